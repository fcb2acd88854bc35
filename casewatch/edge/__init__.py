"""The edge every input passes: pseudonymisation, the ingest doors' checks, bulk loading."""
