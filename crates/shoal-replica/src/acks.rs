//! When a produce request may be answered, as pure decisions.
//!
//! acks=all is a promise (safety rule 1): the batch is on every ISR member and the ISR has at least
//! `min.insync.replicas` members. Kafka checks the ISR size twice — before appending (so a
//! request that cannot be satisfied is not written at all) and again when the HW passes the batch
//! (the ISR may have shrunk meanwhile). Both checks live here.

/// What a produce request asked for, in Kafka's encoding of `acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiredAcks {
    /// acks=0: no response at all.
    None,
    /// acks=1: the leader's own append is enough.
    Leader,
    /// acks=-1 (all): every ISR member, and at least `min.insync.replicas` of them.
    AllInSync,
}

impl RequiredAcks {
    /// Parses the wire value; anything but 0, 1 and -1 is invalid (INVALID_REQUIRED_ACKS).
    pub fn from_wire(acks: i16) -> Option<Self> {
        match acks {
            0 => Some(Self::None),
            1 => Some(Self::Leader),
            -1 => Some(Self::AllInSync),
            _ => None,
        }
    }
}

/// Outcome of the check made before appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendPrecheck {
    Proceed,
    /// NOT_ENOUGH_REPLICAS: the ISR is too small, so the batch is not written.
    NotEnoughReplicas,
}

pub fn precheck_append(
    acks: RequiredAcks,
    isr_size: usize,
    min_insync_replicas: usize,
) -> AppendPrecheck {
    if acks == RequiredAcks::AllInSync && isr_size < min_insync_replicas {
        AppendPrecheck::NotEnoughReplicas
    } else {
        AppendPrecheck::Proceed
    }
}

/// Outcome of an acks=all request that is waiting for its batch to be replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckDecision {
    /// The HW passed the batch with enough replicas in sync: answer success.
    Acknowledge,
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND: the HW passed the batch, but the ISR shrank below the
    /// minimum while it waited, so the promise cannot be given.
    NotEnoughReplicasAfterAppend,
    /// Keep waiting (until the request timeout).
    Wait,
}

/// `required_offset` is the offset after the request's last record.
pub fn decide_ack(
    high_watermark: i64,
    required_offset: i64,
    isr_size: usize,
    min_insync_replicas: usize,
) -> AckDecision {
    if high_watermark < required_offset {
        AckDecision::Wait
    } else if isr_size < min_insync_replicas {
        AckDecision::NotEnoughReplicasAfterAppend
    } else {
        AckDecision::Acknowledge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values() {
        assert_eq!(RequiredAcks::from_wire(0), Some(RequiredAcks::None));
        assert_eq!(RequiredAcks::from_wire(1), Some(RequiredAcks::Leader));
        assert_eq!(RequiredAcks::from_wire(-1), Some(RequiredAcks::AllInSync));
        assert_eq!(RequiredAcks::from_wire(2), None);
        assert_eq!(RequiredAcks::from_wire(-2), None);
    }

    #[test]
    fn precheck_only_guards_acks_all() {
        assert_eq!(
            precheck_append(RequiredAcks::AllInSync, 1, 2),
            AppendPrecheck::NotEnoughReplicas
        );
        assert_eq!(
            precheck_append(RequiredAcks::AllInSync, 2, 2),
            AppendPrecheck::Proceed
        );
        assert_eq!(
            precheck_append(RequiredAcks::Leader, 1, 2),
            AppendPrecheck::Proceed
        );
        assert_eq!(
            precheck_append(RequiredAcks::None, 1, 3),
            AppendPrecheck::Proceed
        );
    }

    #[test]
    fn ack_waits_for_the_high_watermark() {
        assert_eq!(decide_ack(10, 11, 3, 2), AckDecision::Wait);
        assert_eq!(decide_ack(11, 11, 3, 2), AckDecision::Acknowledge);
        assert_eq!(decide_ack(20, 11, 2, 2), AckDecision::Acknowledge);
    }

    #[test]
    fn ack_refused_when_isr_shrank_below_minimum() {
        assert_eq!(
            decide_ack(11, 11, 1, 2),
            AckDecision::NotEnoughReplicasAfterAppend
        );
    }
}
