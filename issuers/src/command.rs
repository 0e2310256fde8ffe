//! The command adapter: a CA team's executable behind a versioned JSON protocol (see
//! `issuers/PROTOCOL.md`).
