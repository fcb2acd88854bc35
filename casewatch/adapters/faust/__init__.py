"""Faust: the only package that touches Faust or aiokafka internals."""
