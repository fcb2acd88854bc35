"""The stream service layer without Faust: figures, stored histories, catching up."""
