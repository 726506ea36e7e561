"""Small checks that endpoints compose into visible pipelines."""
