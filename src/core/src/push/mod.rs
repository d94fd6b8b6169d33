//! Push notifications (spec: Client-Server API › Push Notifications): users' push rule sets
//! (`rules`, stored as `m.push_rules` account data), the evaluation of every new room event for
//! every local recipient (`evaluate`, on cached rule sets and room contexts: `cache`, `room`,
//! with the server-default rules matched once per event: `template`),
//! the resulting unread counts and notification list (`notifications`), and pushers.

pub mod cache;
pub mod evaluate;
pub mod notifications;
pub mod pushers;
pub mod room;
pub mod rules;
pub mod source;
pub mod template;
pub mod unread_batch;

pub use notifications::{UnreadCounts, unread_counts};

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod tests;
