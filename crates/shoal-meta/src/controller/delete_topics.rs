//! Planning DeleteTopics: one RemoveTopic record per topic (its partitions and config overrides
//! go with it when applied).

use uuid::Uuid;

use crate::controller::plan::{Planned, plan_in_order, reject_duplicates};
use crate::controller::requests::TopicRef;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Plans each topic of a DeleteTopics request; the result is the deleted topic's id.
pub fn plan_delete_topics(image: &MetadataImage, topics: Vec<TopicRef>) -> Vec<Planned<Uuid>> {
    let items = reject_duplicates(
        topics,
        |t| match t {
            TopicRef::Name(name) => format!("topic name {name}"),
            TopicRef::Id(id) => format!("topic id {id}"),
        },
        "topic",
    );
    plan_in_order(image, items, |working, topic| {
        let topic_id = match topic {
            TopicRef::Name(name) => match working.topic_by_name(&name) {
                Some(t) => t.id,
                None => return Err(ControllerError::UnknownTopicOrPartition(name)),
            },
            TopicRef::Id(id) => match working.topic(&id) {
                Some(t) => t.id,
                None => return Err(ControllerError::UnknownTopicId(id)),
            },
        };
        Ok((topic_id, vec![MetadataRecord::RemoveTopic { topic_id }]))
    })
}
