//! Topic labels, bounded: a cluster may have any number of topics, a Prometheus server may
//! not have any number of series. The first [`MAX_TOPIC_LABELS`] topic names seen get their
//! own label value; later ones share [`OTHER_TOPICS`].

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use metrics::SharedString;

pub const MAX_TOPIC_LABELS: usize = 1_000;
pub const OTHER_TOPICS: &str = "_other";

static SEEN: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

pub fn topic_label(topic: &str) -> SharedString {
    bounded_label(&SEEN, MAX_TOPIC_LABELS, topic)
}

/// Quota entity labels (user, client id), bounded as topics: the first
/// [`MAX_QUOTA_ENTITY_LABELS`] values of each get their own label, later ones share
/// [`OTHER_TOPICS`]'s `_other`.
pub const MAX_QUOTA_ENTITY_LABELS: usize = 1_000;

static SEEN_USERS: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));
static SEEN_CLIENT_IDS: LazyLock<Mutex<HashSet<String>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

pub fn quota_user_label(user: &str) -> SharedString {
    bounded_label(&SEEN_USERS, MAX_QUOTA_ENTITY_LABELS, user)
}

pub fn quota_client_id_label(client_id: &str) -> SharedString {
    bounded_label(&SEEN_CLIENT_IDS, MAX_QUOTA_ENTITY_LABELS, client_id)
}

fn bounded_label(seen: &Mutex<HashSet<String>>, max: usize, value: &str) -> SharedString {
    let topic = value;
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    if seen.contains(topic) {
        return SharedString::from(topic.to_owned());
    }
    if seen.len() >= max {
        return SharedString::const_str(OTHER_TOPICS);
    }
    seen.insert(topic.to_owned());
    SharedString::from(topic.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        for i in 0..MAX_TOPIC_LABELS + 10 {
            let name = format!("bounded-{i}");
            let label = topic_label(&name);
            if i < MAX_TOPIC_LABELS {
                assert_eq!(label.as_ref(), name);
            } else {
                assert_eq!(label.as_ref(), OTHER_TOPICS);
            }
        }
        // A topic seen early keeps its label.
        assert_eq!(topic_label("bounded-3").as_ref(), "bounded-3");
    }
}
