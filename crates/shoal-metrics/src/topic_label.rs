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
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.contains(topic) {
        return SharedString::from(topic.to_owned());
    }
    if seen.len() >= MAX_TOPIC_LABELS {
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
