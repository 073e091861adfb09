//! Integration tests of the target side against the real MariaDB (`stack/stack.sh up`): a target
//! database of its own per test, kept when the test fails.

mod changes;
mod support;
