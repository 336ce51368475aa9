//! Internal topics (`__consumer_offsets`, `__transaction_state`) are Shoal's own.
//!
//! Their records are written by the group and transaction coordinators and replayed by them on
//! every leadership change; a client's batch in one would be replayed as group state (one junk
//! batch per partition used to cost every group NOT_COORDINATOR after a restart). So clients
//! cannot produce to them (INVALID_TOPIC_EXCEPTION, as Kafka's ReplicaManager answers), nor
//! create, delete or grow them (INVALID_REQUEST, Kafka's "Creation of internal topic ... is
//! prohibited."). The coordinators reach the controller directly, not through these handlers.

use std::future::Future;

use shoal_meta::ControllerError;
use shoal_meta::controller::ControllerResults;
use shoal_meta::topic_name::is_internal;

/// An admin action clients may not take on an internal topic.
#[derive(Debug, Clone, Copy)]
pub enum AdminAction {
    Create,
    Delete,
    CreatePartitions,
}

/// Why a client's admin `action` on `topic` is refused, if it is.
pub fn refusal(action: AdminAction, topic: &str) -> Option<ControllerError> {
    if !is_internal(topic) {
        return None;
    }
    let what = match action {
        AdminAction::Create => "Creation of",
        AdminAction::Delete => "Deletion of",
        AdminAction::CreatePartitions => "Changing the partition count of",
    };
    Some(ControllerError::InvalidRequest(format!(
        "{what} internal topic {topic} is prohibited."
    )))
}

/// The message of a client's Produce to an internal topic.
pub fn produce_refusal(topic: &str) -> Option<String> {
    is_internal(topic).then(|| format!("Cannot append to internal topic {topic}"))
}

/// Calls the controller with the items `refuse` lets through and puts each refused item's
/// error back in its place, so the answer keeps the request's order.
pub async fn forward_allowed<T, R, F, Fut>(
    items: Vec<T>,
    refuse: impl Fn(&T) -> Option<ControllerError>,
    call: F,
) -> ControllerResults<R>
where
    F: FnOnce(Vec<T>) -> Fut,
    Fut: Future<Output = ControllerResults<R>>,
{
    let refusals: Vec<Option<ControllerError>> = items.iter().map(&refuse).collect();
    let allowed: Vec<T> = items
        .into_iter()
        .zip(&refusals)
        .filter_map(|(item, refused)| refused.is_none().then_some(item))
        .collect();
    let outcome = if allowed.is_empty() {
        ControllerResults {
            results: Vec::new(),
            log_index: None,
        }
    } else {
        call(allowed).await
    };
    let mut forwarded = outcome.results.into_iter();
    let results = refusals
        .into_iter()
        .map(|refused| match refused {
            Some(error) => Err(error),
            None => forwarded.next().unwrap_or_else(|| {
                Err(ControllerError::Internal(
                    "the controller answered fewer items than it was sent".to_string(),
                ))
            }),
        })
        .collect();
    ControllerResults {
        results,
        log_index: outcome.log_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_topics_are_refused_for_every_action() {
        for action in [
            AdminAction::Create,
            AdminAction::Delete,
            AdminAction::CreatePartitions,
        ] {
            let refused = refusal(action, "__consumer_offsets");
            assert!(
                matches!(refused, Some(ControllerError::InvalidRequest(ref m)) if m.contains("__consumer_offsets")),
                "{action:?}"
            );
            assert!(refusal(action, "orders").is_none());
            assert!(refusal(action, "__orders").is_none());
        }
        assert!(produce_refusal("__consumer_offsets").is_some());
        assert!(produce_refusal("orders").is_none());
    }

    #[tokio::test]
    async fn refused_items_keep_their_place_and_the_rest_are_forwarded() {
        let items = vec!["a", "__consumer_offsets", "b", "__transaction_state"];
        let outcome = forward_allowed(
            items,
            |t| refusal(AdminAction::Create, t),
            |allowed| async move {
                assert_eq!(allowed, vec!["a", "b"]);
                ControllerResults {
                    results: allowed.iter().map(|t| Ok(t.to_string())).collect(),
                    log_index: Some(7),
                }
            },
        )
        .await;
        assert_eq!(outcome.log_index, Some(7));
        let shown: Vec<String> = outcome
            .results
            .iter()
            .map(|r| match r {
                Ok(name) => name.clone(),
                Err(_) => "refused".to_string(),
            })
            .collect();
        assert_eq!(shown, vec!["a", "refused", "b", "refused"]);
    }

    #[tokio::test]
    async fn nothing_is_sent_when_everything_is_refused() {
        let outcome: ControllerResults<()> = forward_allowed(
            vec!["__consumer_offsets"],
            |t| refusal(AdminAction::Delete, t),
            |_| async { panic!("must not be called") },
        )
        .await;
        assert_eq!(outcome.log_index, None);
        assert!(outcome.results[0].is_err());
    }
}
