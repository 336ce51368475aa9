//! The classic consumer protocol's embedded bytes (`ConsumerProtocolSubscription` and
//! `ConsumerProtocolAssignment`, versions 0-3): what a classic consumer puts in its JoinGroup
//! metadata and reads from its SyncGroup assignment.
//!
//! **Why here.** A classic member in a consumer group (an online migration) is assigned by
//! the server, so the coordinator must read its subscription and write its assignment itself.
//! The bytes come from the network inside a request: every count is checked against the
//! bytes left before anything is allocated (`kafka-protocol`'s decoder reserves from the
//! wire), and a version newer than 3 is read as 3, as Kafka's `ConsumerProtocol` does.

use bytes::{BufMut, Bytes, BytesMut};

use crate::records::{Reader, RecordError, put_string};

type Result<T> = std::result::Result<T, RecordError>;

/// The newest version of both layouts.
pub const MAX_VERSION: i16 = 3;

/// Topic name → partitions, in the order the bytes list them.
pub type TopicPartitions = Vec<(String, Vec<i32>)>;

/// A classic consumer's subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmbeddedSubscription {
    /// The version it was written at (its member's assignment is written back at it).
    pub version: i16,
    pub topics: Vec<String>,
    /// v1+: what the member owns now (cooperative rebalancing).
    pub owned: TopicPartitions,
    /// v3+.
    pub rack_id: Option<String>,
}

/// The version a subscription or assignment starts with; `None` for bytes too short.
pub fn version_of(bytes: &[u8]) -> Option<i16> {
    let b = bytes.get(..2)?;
    Some(i16::from_be_bytes([b[0], b[1]]))
}

pub fn decode_subscription(bytes: &[u8]) -> Result<EmbeddedSubscription> {
    let mut r = Reader::new(bytes);
    let version = checked_version(r.i16()?)?;
    let count = count_of(&mut r, 2)?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(r.string()?);
    }
    skip_nullable_bytes(&mut r)?;
    let owned = if version >= 1 {
        topic_partitions(&mut r)?
    } else {
        Vec::new()
    };
    if version >= 2 {
        let _generation = r.i32()?;
    }
    let rack_id = if version >= 3 {
        r.nullable_string()?
    } else {
        None
    };
    Ok(EmbeddedSubscription {
        version,
        topics,
        owned,
        rack_id,
    })
}

pub fn decode_assignment(bytes: &[u8]) -> Result<TopicPartitions> {
    let mut r = Reader::new(bytes);
    checked_version(r.i16()?)?;
    let assigned = topic_partitions(&mut r)?;
    skip_nullable_bytes(&mut r)?;
    Ok(assigned)
}

/// An assignment at `version` (clamped to 0..=3), without user data.
pub fn encode_assignment(version: i16, assigned: &[(String, Vec<i32>)]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(version.clamp(0, MAX_VERSION));
    put_count(&mut out, assigned.len());
    for (topic, partitions) in assigned {
        put_string(&mut out, topic);
        put_count(&mut out, partitions.len());
        for p in partitions {
            out.put_i32(*p);
        }
    }
    out.put_i32(-1); // no user data
    out.freeze()
}

/// A version 0 subscription to `topics`, without user data.
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    put_count(&mut out, topics.len());
    for t in topics {
        put_string(&mut out, t);
    }
    out.put_i32(-1); // no user data
    out.freeze()
}

fn checked_version(version: i16) -> Result<i16> {
    if version < 0 {
        return Err(RecordError(format!(
            "embedded consumer protocol version {version}"
        )));
    }
    // A newer writer adds fields at the end: read what version 3 knows.
    Ok(version.min(MAX_VERSION))
}

/// An array count whose elements take at least `min_size` bytes each, checked against what is
/// left, so a lying count allocates nothing.
fn count_of(r: &mut Reader<'_>, min_size: usize) -> Result<usize> {
    let n = r.count()?;
    if n.saturating_mul(min_size) > r.remaining() {
        return Err(RecordError(format!(
            "array of {n} but {} bytes left",
            r.remaining()
        )));
    }
    Ok(n)
}

fn topic_partitions(r: &mut Reader<'_>) -> Result<TopicPartitions> {
    // A topic entry: a name (2 bytes at least) and a partition count (4).
    let count = count_of(r, 6)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let topic = r.string()?;
        let n = count_of(r, 4)?;
        let mut partitions = Vec::with_capacity(n);
        for _ in 0..n {
            partitions.push(r.i32()?);
        }
        out.push((topic, partitions));
    }
    Ok(out)
}

fn skip_nullable_bytes(r: &mut Reader<'_>) -> Result<()> {
    let len = r.i32()?;
    if len >= 0 {
        r.take(usize::try_from(len).unwrap_or(usize::MAX))?;
    }
    Ok(())
}

fn put_count(out: &mut BytesMut, n: usize) {
    out.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subscription at `version` as a Java or librdkafka client writes it.
    fn subscription(
        version: i16,
        topics: &[&str],
        owned: &[(&str, &[i32])],
        rack: Option<&str>,
    ) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(version);
        out.put_i32(topics.len() as i32);
        for t in topics {
            put_string(&mut out, t);
        }
        out.put_i32(3); // user data
        out.put_slice(b"abc");
        if version >= 1 {
            out.put_i32(owned.len() as i32);
            for (t, ps) in owned {
                put_string(&mut out, t);
                out.put_i32(ps.len() as i32);
                for p in *ps {
                    out.put_i32(*p);
                }
            }
        }
        if version >= 2 {
            out.put_i32(7);
        }
        if version >= 3 {
            match rack {
                Some(r) => put_string(&mut out, r),
                None => out.put_i16(-1),
            }
        }
        if version > 3 {
            out.put_slice(b"a newer writer's field");
        }
        out.freeze()
    }

    #[test]
    fn subscriptions_of_every_version_read() {
        let owned: &[(&str, &[i32])] = &[("a", &[0, 2])];
        for (version, want_owned, want_rack) in [
            (0, vec![], None),
            (1, vec![("a".to_string(), vec![0, 2])], None),
            (2, vec![("a".to_string(), vec![0, 2])], None),
            (
                3,
                vec![("a".to_string(), vec![0, 2])],
                Some("r1".to_string()),
            ),
            (
                4,
                vec![("a".to_string(), vec![0, 2])],
                Some("r1".to_string()),
            ),
        ] {
            let bytes = subscription(version, &["a", "b"], owned, Some("r1"));
            let s = decode_subscription(&bytes).expect("decodes");
            assert_eq!(s.topics, vec!["a", "b"], "v{version}");
            assert_eq!(s.owned, want_owned, "v{version}");
            assert_eq!(s.rack_id, want_rack, "v{version}");
            assert_eq!(s.version, version.min(3));
        }
    }

    #[test]
    fn assignments_round_trip_at_each_version() {
        let assigned = vec![("t".to_string(), vec![1, 4]), ("u".to_string(), vec![])];
        for version in 0..=3 {
            let bytes = encode_assignment(version, &assigned);
            assert_eq!(version_of(&bytes), Some(version));
            assert_eq!(decode_assignment(&bytes).expect("decodes"), assigned);
        }
        assert_eq!(version_of(&encode_assignment(9, &assigned)), Some(3));
    }

    #[test]
    fn our_subscription_reads_back() {
        let bytes = encode_subscription(&["x".to_string(), "y".to_string()]);
        let s = decode_subscription(&bytes).expect("decodes");
        assert_eq!(s.topics, vec!["x", "y"]);
        assert!(s.owned.is_empty());
    }

    #[test]
    fn lying_counts_and_short_bytes_are_refused_without_allocating() {
        // Two billion topics announced in ten bytes.
        let mut huge = BytesMut::new();
        huge.put_i16(0);
        huge.put_i32(i32::MAX);
        huge.put_i32(0);
        assert!(decode_subscription(&huge).is_err());
        let mut parts = BytesMut::new();
        parts.put_i16(1);
        parts.put_i32(1);
        put_string(&mut parts, "t");
        parts.put_i32(i32::MAX);
        assert!(decode_assignment(&parts).is_err());
        assert!(decode_subscription(&[]).is_err());
        assert!(
            decode_subscription(&[0xff, 0xff, 0, 0, 0, 0]).is_err(),
            "negative version"
        );
        let good = subscription(3, &["a"], &[("a", &[1])], None);
        for cut in 0..good.len() {
            assert!(decode_subscription(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(version_of(&[1]), None);
    }
}
