//! Players: accounts, passwords, sessions, wallet and streaks (players.md).
//! Pure domain code: no I/O, no locks, no clock reads.

pub mod account;
pub mod audit;
pub mod roster;
pub mod streak;
pub mod wallet;
