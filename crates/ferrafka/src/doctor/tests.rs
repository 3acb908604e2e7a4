//! Unit tests of the static checks and of the live checks against a fake cluster.
