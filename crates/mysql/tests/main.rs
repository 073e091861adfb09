//! Integration tests of the target side against the real MySQL and MariaDB (`stack/stack.sh up`), each on both: a target
//! database of its own per test, kept when the test fails.

mod changes;
mod load;
mod support;
mod tls;
mod truncate;
