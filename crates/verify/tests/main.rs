//! Integration tests of verify against the real stack (`stack/stack.sh up`), each on MySQL and on
//! MariaDB: a source database and a target database of their own per test, a migrated target, then
//! tampering with it.

mod equal;
mod speed;
mod support;
mod tamper;
