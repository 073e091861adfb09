//! Integration tests of verify against the real stack (`stack/stack.sh up`).
