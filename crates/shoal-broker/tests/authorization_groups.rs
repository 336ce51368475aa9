//! ACL authorization of the consumer group APIs, as Kafka's KafkaApis checks it: a node with
//! the StandardAuthorizer, `User:admin` a super user, and `User:alice` allowed READ on group
//! `billing` and on topics prefixed `orders-`. Each check is shown both ways (allowed and
//! denied), so a missing check fails a test; a denied request must leave no trace.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use common::{
    ADMIN, GROUP_AUTHORIZATION_FAILED, Harness, MEMBER_ID_REQUIRED, Picked,
    TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, acl, allow, allow_prefixed,
    commit_request, deny, join_request, on_cluster, s, sync_request,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Request;
use shoal_acl::{Operation, PatternType, Permission, ResourceType};

const ALICE: &str = "User:alice";

/// The authorizing node, topics `orders-eu` (2 partitions), `orders-us` and `payments` (1 each),
/// the coordinator loaded, and alice's ACLs: READ on group `billing`, READ on topics `orders-*`.
async fn harness() -> Harness {
    let h = Harness::start_secured(&[("group.min.session.timeout.ms", "1000")]).await;
    // Through the controller, not the Kafka API: no principal involved.
    h.create_topic("orders-eu", 2).await;
    h.create_topic("orders-us", 1).await;
    h.create_topic("payments", 1).await;
    // ANONYMOUS may do nothing here: wait as the super user.
    h.wait_for_coordinator_as(ADMIN).await;
    h.create_acls(vec![
        allow(ALICE, ResourceType::Group, "billing", Operation::Read),
        allow_prefixed(ALICE, "orders-", Operation::Read),
    ])
    .await;
    h
}

/// Requests as one principal.
struct As<'a>(&'a Harness, &'a str);

/// (topic, partition, error code) of a per-partition answer.
type PartitionErrors = Vec<(String, i32, i16)>;
/// (topic, partition, offset)s.
type Offsets<'a> = &'a [(&'a str, i32, i64)];
/// (topic, partition, error code)s.
type Errors<'a> = &'a [(&'a str, i32, i16)];

impl As<'_> {
    async fn ask<R>(&self, version: i16, request: R) -> R::Response
    where
        R: Request + Into<RequestKind>,
        R::Response: Picked,
    {
        self.0.ask(self.1, version, request).await
    }

    /// FindCoordinator for `keys` of `key_type`: (error code, message, node id) per key.
    async fn find(
        &self,
        version: i16,
        key_type: i8,
        keys: &[&str],
    ) -> Vec<(i16, Option<String>, i32)> {
        let mut request = FindCoordinatorRequest::default().with_key_type(key_type);
        if version >= 4 {
            request.coordinator_keys = keys.iter().map(|k| s(k)).collect();
        } else {
            assert_eq!(keys.len(), 1);
            request.key = s(keys[0]);
        }
        let r = self.ask(version, request).await;
        let message =
            |m: &Option<kafka_protocol::protocol::StrBytes>| m.as_ref().map(|m| m.to_string());
        if version >= 4 {
            r.coordinators
                .iter()
                .map(|c| (c.error_code, message(&c.error_message), c.node_id.0))
                .collect()
        } else {
            vec![(r.error_code, message(&r.error_message), r.node_id.0)]
        }
    }

    async fn join_once(&self, group: &str, member_id: &str) -> JoinGroupResponse {
        let request = join_request(5, group, member_id, "consumer");
        self.0.call_for(self.1, ApiKey::JoinGroup, 5, request).await
    }

    /// A new member's JoinGroup v5 (through MEMBER_ID_REQUIRED when the group is readable).
    async fn join(&self, group: &str) -> JoinGroupResponse {
        let first = self.join_once(group, "").await;
        if first.error_code != MEMBER_ID_REQUIRED {
            return first;
        }
        self.join_once(group, &first.member_id.to_string()).await
    }

    async fn sync(&self, version: i16, group: &str, generation: i32, member: &str) -> i16 {
        let request = sync_request(version, group, generation, member, &[(member, b"asg")]);
        let r: SyncGroupResponse = self
            .0
            .call_for(self.1, ApiKey::SyncGroup, version, request)
            .await;
        r.error_code
    }

    async fn heartbeat(&self, group: &str, generation: i32, member: &str) -> i16 {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s(member));
        let r = self.ask(4, request).await;
        r.error_code
    }

    /// LeaveGroup: (top-level error code, per-member error codes).
    async fn leave(&self, version: i16, group: &str, member: &str) -> (i16, Vec<i16>) {
        let mut request = LeaveGroupRequest::default().with_group_id(GroupId(s(group)));
        if version >= 3 {
            request.members =
                vec![leave_group_request::MemberIdentity::default().with_member_id(s(member))];
        } else {
            request.member_id = s(member);
        }
        let r = self.ask(version, request).await;
        (
            r.error_code,
            r.members.iter().map(|m| m.error_code).collect(),
        )
    }

    /// OffsetCommit of `(topic, partition, offset)`s: the error code of each partition.
    async fn commit(
        &self,
        version: i16,
        group: &str,
        generation: i32,
        member: &str,
        offsets: &[(&str, i32, i64)],
    ) -> PartitionErrors {
        let request = commit_request(group, generation, member, offsets, false);
        let r = self.ask(version, request).await;
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
            })
            .collect()
    }

    /// OffsetFetch of one group (`topics` None = all): the group's error code and
    /// (topic, partition, offset, error code) per answered partition.
    async fn fetch(
        &self,
        version: i16,
        group: &str,
        topics: Option<&[(&str, &[i32])]>,
    ) -> (i16, Vec<(String, i32, i64, i16)>) {
        let mut r = self
            .fetch_groups(version, &[(group, topics)])
            .await
            .into_iter();
        let one = r.next().unwrap();
        assert!(r.next().is_none());
        (one.1, one.2)
    }

    /// OffsetFetch of several groups (v8+, or one group below): per group (group id, error
    /// code, (topic, partition, offset, error code) per partition).
    #[allow(clippy::type_complexity)]
    async fn fetch_groups(
        &self,
        version: i16,
        groups: &[(&str, Option<&[(&str, &[i32])]>)],
    ) -> Vec<(String, i16, Vec<(String, i32, i64, i16)>)> {
        // v8+ and the older versions carry the same topic fields in types of their own.
        macro_rules! asked {
            ($topic:ty, $topics:expr) => {
                $topics.map(|ts| {
                    ts.iter()
                        .map(|(t, ps)| {
                            <$topic>::default()
                                .with_name(TopicName(s(t)))
                                .with_partition_indexes(ps.to_vec())
                        })
                        .collect()
                })
            };
        }
        macro_rules! answered {
            ($topics:expr) => {
                $topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| {
                            (
                                t.name.0.to_string(),
                                p.partition_index,
                                p.committed_offset,
                                p.error_code,
                            )
                        })
                    })
                    .collect()
            };
        }
        if version >= 8 {
            let request = OffsetFetchRequest::default().with_groups(
                groups
                    .iter()
                    .map(|(group, topics)| {
                        offset_fetch_request::OffsetFetchRequestGroup::default()
                            .with_group_id(GroupId(s(group)))
                            .with_topics(asked!(
                                offset_fetch_request::OffsetFetchRequestTopics,
                                topics
                            ))
                    })
                    .collect(),
            );
            let r = self.ask(version, request).await;
            return r
                .groups
                .iter()
                .map(|g| (g.group_id.0.to_string(), g.error_code, answered!(g.topics)))
                .collect();
        }
        assert_eq!(groups.len(), 1, "one group per request below v8");
        let (group, topics) = groups[0];
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(asked!(
                offset_fetch_request::OffsetFetchRequestTopic,
                topics
            ));
        let r = self.ask(version, request).await;
        vec![(group.to_owned(), r.error_code, answered!(r.topics))]
    }

    /// DescribeGroups: (group id, error code, state, member count) per group.
    async fn describe(&self, version: i16, groups: &[&str]) -> Vec<(String, i16, String, usize)> {
        let request = DescribeGroupsRequest::default()
            .with_groups(groups.iter().map(|g| GroupId(s(g))).collect());
        let r = self.ask(version, request).await;
        r.groups
            .iter()
            .map(|g| {
                (
                    g.group_id.0.to_string(),
                    g.error_code,
                    g.group_state.to_string(),
                    g.members.len(),
                )
            })
            .collect()
    }

    /// ListGroups: the listed group ids, sorted.
    async fn list(&self, version: i16) -> Vec<String> {
        let r = self.ask(version, ListGroupsRequest::default()).await;
        assert_eq!(r.error_code, 0);
        let mut groups: Vec<String> = r.groups.iter().map(|g| g.group_id.0.to_string()).collect();
        groups.sort();
        groups
    }

    async fn delete_groups(&self, groups: &[&str]) -> Vec<(String, i16)> {
        let request = DeleteGroupsRequest::default()
            .with_groups_names(groups.iter().map(|g| GroupId(s(g))).collect());
        let r = self.ask(2, request).await;
        r.results
            .iter()
            .map(|g| (g.group_id.0.to_string(), g.error_code))
            .collect()
    }

    /// OffsetDelete: the top-level error code and each partition's.
    async fn offset_delete(&self, group: &str, topics: &[(&str, i32)]) -> (i16, PartitionErrors) {
        let request = OffsetDeleteRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(
                topics
                    .iter()
                    .map(|(t, p)| {
                        offset_delete_request::OffsetDeleteRequestTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(vec![
                                offset_delete_request::OffsetDeleteRequestPartition::default()
                                    .with_partition_index(*p),
                            ])
                    })
                    .collect(),
            );
        let r = self.ask(0, request).await;
        let partitions = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
            })
            .collect();
        (r.error_code, partitions)
    }

    /// A one-member Stable group: (member id, generation).
    async fn stable_group(&self, group: &str) -> (String, i32) {
        let joined = self.join(group).await;
        assert_eq!(joined.error_code, 0, "{} joins {group}: {joined:?}", self.1);
        let member = joined.member_id.to_string();
        assert_eq!(self.sync(3, group, joined.generation_id, &member).await, 0);
        (member, joined.generation_id)
    }
}

fn errors(partitions: &[(String, i32, i64, i16)]) -> Vec<(&str, i32, i16)> {
    partitions
        .iter()
        .map(|(t, p, _, e)| (t.as_str(), *p, *e))
        .collect()
}

fn offsets(partitions: &[(String, i32, i64, i16)]) -> Vec<(&str, i32, i64)> {
    partitions
        .iter()
        .map(|(t, p, o, _)| (t.as_str(), *p, *o))
        .collect()
}

fn owned(rows: &[(&str, i32, i16)]) -> PartitionErrors {
    rows.iter()
        .map(|(t, p, e)| ((*t).to_owned(), *p, *e))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_coordinator_needs_describe_on_the_group_or_transactional_id() {
    let h = harness().await;
    let (alice, admin) = (As(&h, ALICE), As(&h, ADMIN));
    // (principal, version, key type, key, expected error code): READ on the group implies the
    // DESCRIBE FindCoordinator asks for.
    let table: &[(&As, i16, i8, &str, i16)] = &[
        (&alice, 3, 0, "billing", 0),
        (&alice, 3, 0, "other", GROUP_AUTHORIZATION_FAILED),
        (&alice, 1, 0, "other", GROUP_AUTHORIZATION_FAILED),
        (&admin, 3, 0, "other", 0),
        (&alice, 3, 1, "tx-1", TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
    ];
    for (who, version, key_type, key, expected) in table {
        let found = who.find(*version, *key_type, &[key]).await;
        assert_eq!(found[0].0, *expected, "{} v{version} {key:?}", who.1);
        assert_eq!(found[0].2 == -1, *expected != 0, "a node only when allowed");
    }
    // v4+: each key of a batch on its own.
    for version in [4, 6] {
        let found = alice
            .find(version, 0, &["billing", "other", "billing"])
            .await;
        let codes: Vec<i16> = found.iter().map(|f| f.0).collect();
        assert_eq!(codes, vec![0, GROUP_AUTHORIZATION_FAILED, 0], "v{version}");
        assert_eq!(found[1].2, -1);
    }
    // A transactional id: refused as unauthorized before the "unsupported" answer the super
    // user gets (both with Kafka's fatal code).
    for version in [3, 4] {
        let denied = alice.find(version, 1, &["tx-1"]).await;
        let unsupported = admin.find(version, 1, &["tx-1"]).await;
        assert_eq!(denied[0].0, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        let denied_message = denied[0].1.clone().unwrap_or_default();
        assert!(
            denied_message.contains("authorization"),
            "v{version}: {denied_message:?}"
        );
        assert_ne!(denied[0].1, unsupported[0].1, "v{version}");
    }
    h.create_acls(vec![allow(
        ALICE,
        ResourceType::TransactionalId,
        "tx-1",
        Operation::Describe,
    )])
    .await;
    assert_eq!(
        alice.find(3, 1, &["tx-1"]).await[0].1,
        admin.find(3, 1, &["tx-1"]).await[0].1,
        "with DESCRIBE alice gets past authorization"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_apis_need_read_on_the_group_and_leave_no_trace_when_denied() {
    let h = harness().await;
    let (alice, admin) = (As(&h, ALICE), As(&h, ADMIN));
    // Allowed: the whole life of a member of `billing`.
    let (member, generation) = alice.stable_group("billing").await;
    assert_eq!(alice.heartbeat("billing", generation, &member).await, 0);

    // Denied, on a group that does not exist and on one that does (the super user's): the
    // same answer, so the answer does not tell whether the group exists.
    let (admins_member, admins_generation) = admin.stable_group("secret").await;
    for group in ["other", "secret"] {
        let joined = alice.join(group).await;
        assert_eq!(joined.error_code, GROUP_AUTHORIZATION_FAILED, "{group}");
        assert_eq!(
            (joined.generation_id, joined.member_id.as_str()),
            (-1, ""),
            "no member id is handed out"
        );
        for version in [3, 5] {
            assert_eq!(
                alice
                    .sync(version, group, admins_generation, &admins_member)
                    .await,
                GROUP_AUTHORIZATION_FAILED,
                "{group} SyncGroup v{version}"
            );
        }
        assert_eq!(
            alice
                .heartbeat(group, admins_generation, &admins_member)
                .await,
            GROUP_AUTHORIZATION_FAILED,
            "{group}"
        );
        assert_eq!(
            alice.leave(2, group, &admins_member).await,
            (GROUP_AUTHORIZATION_FAILED, vec![])
        );
        assert_eq!(
            alice.leave(3, group, &admins_member).await,
            (GROUP_AUTHORIZATION_FAILED, vec![]),
            "v3+: the top-level error, no member results"
        );
    }
    // Nothing happened: `other` was not created, the super user's member is still in `secret`.
    assert_eq!(
        admin.describe(5, &["other", "secret"]).await,
        vec![
            ("other".to_owned(), 0, "Dead".to_owned(), 0),
            ("secret".to_owned(), 0, "Stable".to_owned(), 1),
        ]
    );
    assert_eq!(
        admin
            .heartbeat("secret", admins_generation, &admins_member)
            .await,
        0
    );
    assert_eq!(admin.list(3).await, vec!["billing", "secret"]);

    // Leaving the group alice may read.
    assert_eq!(alice.leave(3, "billing", &member).await, (0, vec![0]));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commit_checks_the_group_then_each_topic() {
    let h = harness().await;
    let (alice, admin) = (As(&h, ALICE), As(&h, ADMIN));
    let (member, generation) = alice.stable_group("billing").await;
    // (version, group, offsets, expected per-partition codes)
    let table: &[(i16, &str, Offsets, Errors)] = &[
        // READ on the group and on `orders-*`: committed; `payments` is not readable and is
        // refused on its own, an unknown topic too (authorization comes first).
        (
            8,
            "billing",
            &[
                ("orders-eu", 0, 5),
                ("payments", 0, 7),
                ("orders-eu", 1, 6),
                ("nope", 0, 1),
            ],
            &[
                ("orders-eu", 0, 0),
                ("orders-eu", 1, 0),
                ("payments", 0, TOPIC_AUTHORIZATION_FAILED),
                ("nope", 0, TOPIC_AUTHORIZATION_FAILED),
            ],
        ),
        (2, "billing", &[("orders-us", 0, 3)], &[("orders-us", 0, 0)]),
        // No READ on the group: every partition, readable topic or not.
        (
            8,
            "other",
            &[("orders-eu", 0, 9), ("payments", 0, 9)],
            &[
                ("orders-eu", 0, GROUP_AUTHORIZATION_FAILED),
                ("payments", 0, GROUP_AUTHORIZATION_FAILED),
            ],
        ),
        (
            2,
            "other",
            &[("orders-eu", 0, 9)],
            &[("orders-eu", 0, GROUP_AUTHORIZATION_FAILED)],
        ),
    ];
    for (version, group, commits, expected) in table {
        let (generation, member) = if *group == "billing" {
            (generation, member.as_str())
        } else {
            (-1, "")
        };
        assert_eq!(
            alice
                .commit(*version, group, generation, member, commits)
                .await,
            owned(expected),
            "v{version} {group} {commits:?}"
        );
    }
    // Only the authorized partitions were written, and nothing for `other`.
    let (error, all) = admin.fetch(7, "billing", None).await;
    assert_eq!(error, 0);
    assert_eq!(
        offsets(&all),
        vec![
            ("orders-eu", 0, 5),
            ("orders-eu", 1, 6),
            ("orders-us", 0, 3)
        ]
    );
    let (error, all) = admin.fetch(7, "other", None).await;
    assert_eq!((error, all), (0, vec![]));
    // The super user commits anywhere (here for alice's member, which it may).
    assert_eq!(
        admin
            .commit(8, "billing", generation, &member, &[("payments", 0, 11)])
            .await,
        owned(&[("payments", 0, 0)])
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_fetch_checks_the_group_and_hides_topics_not_describable() {
    let h = harness().await;
    let (alice, admin) = (As(&h, ALICE), As(&h, ADMIN));
    let (member, generation) = alice.stable_group("billing").await;
    assert_eq!(
        admin
            .commit(
                8,
                "billing",
                generation,
                &member,
                &[("orders-eu", 0, 5), ("payments", 0, 7)]
            )
            .await,
        owned(&[("orders-eu", 0, 0), ("payments", 0, 0)])
    );
    // The super user has an offset in a group alice may not describe.
    assert_eq!(
        admin
            .commit(8, "secret", -1, "", &[("orders-eu", 0, 4)])
            .await,
        owned(&[("orders-eu", 0, 0)])
    );
    let asked: &[(&str, &[i32])] = &[("payments", &[0]), ("orders-eu", &[0, 1])];
    for version in [1, 3, 7, 8, 9] {
        // Topics asked for: the one without DESCRIBE answers TOPIC_AUTHORIZATION_FAILED (after
        // the others, as Kafka orders them) and shows no offset.
        let (error, partitions) = alice.fetch(version, "billing", Some(asked)).await;
        assert_eq!(error, 0, "v{version}");
        assert_eq!(
            partitions,
            vec![
                ("orders-eu".to_owned(), 0, 5, 0),
                ("orders-eu".to_owned(), 1, -1, 0),
                ("payments".to_owned(), 0, -1, TOPIC_AUTHORIZATION_FAILED),
            ],
            "v{version}"
        );
        // The super user sees it.
        let (_, partitions) = admin.fetch(version, "billing", Some(asked)).await;
        assert_eq!(
            offsets(&partitions),
            vec![
                ("payments", 0, 7),
                ("orders-eu", 0, 5),
                ("orders-eu", 1, -1)
            ],
            "v{version}"
        );
        // No DESCRIBE on the group, whether it exists (`secret`) or not: the group's error
        // (v2+), or every asked partition's (v1); no offsets either way.
        for group in ["secret", "other"] {
            let (error, partitions) = alice.fetch(version, group, Some(asked)).await;
            if version >= 2 {
                assert_eq!(
                    (error, partitions),
                    (GROUP_AUTHORIZATION_FAILED, vec![]),
                    "v{version} {group}"
                );
            } else {
                assert_eq!(error, 0, "v1 has no group-level error");
                assert_eq!(
                    errors(&partitions),
                    vec![
                        ("payments", 0, GROUP_AUTHORIZATION_FAILED),
                        ("orders-eu", 0, GROUP_AUTHORIZATION_FAILED),
                        ("orders-eu", 1, GROUP_AUTHORIZATION_FAILED),
                    ],
                    "v1 {group}"
                );
                assert!(partitions.iter().all(|p| p.2 == -1), "v1 {group}");
            }
        }
        if version >= 2 {
            // Every topic (null): the topic without DESCRIBE is silently left out.
            let (error, partitions) = alice.fetch(version, "billing", None).await;
            assert_eq!(error, 0);
            assert_eq!(
                offsets(&partitions),
                vec![("orders-eu", 0, 5)],
                "v{version}"
            );
            let (_, partitions) = admin.fetch(version, "billing", None).await;
            assert_eq!(
                offsets(&partitions),
                vec![("orders-eu", 0, 5), ("payments", 0, 7)],
                "v{version}"
            );
        }
    }
    // v8+: each group of a batch on its own.
    let fetched = alice
        .fetch_groups(
            8,
            &[
                ("secret", None),
                ("billing", None),
                ("other", Some(&[("orders-eu", &[0])])),
            ],
        )
        .await;
    #[allow(clippy::type_complexity)]
    let summary: Vec<(&str, i16, Vec<(&str, i32, i64)>)> = fetched
        .iter()
        .map(|(g, e, ps)| (g.as_str(), *e, offsets(ps)))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("secret", GROUP_AUTHORIZATION_FAILED, vec![]),
            ("billing", 0, vec![("orders-eu", 0, 5)]),
            ("other", GROUP_AUTHORIZATION_FAILED, vec![]),
        ]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_list_show_only_the_groups_one_may_describe() {
    let h = harness().await;
    let (alice, admin) = (As(&h, ALICE), As(&h, ADMIN));
    alice.stable_group("billing").await;
    admin.stable_group("secret").await;
    // ListGroups: the super user (DESCRIBE on the cluster) sees every group, alice those she
    // may describe, without an error.
    for version in [0, 3, 4, 5] {
        assert_eq!(alice.list(version).await, vec!["billing"], "v{version}");
        assert_eq!(
            admin.list(version).await,
            vec!["billing", "secret"],
            "v{version}"
        );
    }
    // DescribeGroups: per group; an existing and a missing group alike.
    for version in [0, 5, 6] {
        let described = alice
            .describe(version, &["billing", "secret", "other"])
            .await;
        assert_eq!(
            described,
            vec![
                ("billing".to_owned(), 0, "Stable".to_owned(), 1),
                (
                    "secret".to_owned(),
                    GROUP_AUTHORIZATION_FAILED,
                    String::new(),
                    0
                ),
                (
                    "other".to_owned(),
                    GROUP_AUTHORIZATION_FAILED,
                    String::new(),
                    0
                ),
            ],
            "v{version}"
        );
        let described = admin.describe(version, &["secret"]).await;
        assert_eq!(
            described,
            vec![("secret".to_owned(), 0, "Stable".to_owned(), 1)]
        );
    }
    // DESCRIBE on the cluster lists everything.
    h.create_acls(vec![on_cluster(ALICE, Operation::Describe)])
        .await;
    assert_eq!(alice.list(4).await, vec!["billing", "secret"]);
    // ... but does not let her describe a group.
    assert_eq!(
        alice.describe(5, &["secret"]).await[0].1,
        GROUP_AUTHORIZATION_FAILED
    );

    // Authorized operations (v3+, on request): what alice may do with each group.
    let request = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(s("billing")), GroupId(s("secret"))])
        .with_include_authorized_operations(true);
    let r = alice.ask(5, request).await;
    let bit = |op: Operation| 1i32 << op.code();
    assert_eq!(
        r.groups[0].authorized_operations,
        bit(Operation::Read) | bit(Operation::Describe)
    );
    assert_eq!(
        r.groups[1].authorized_operations,
        i32::MIN,
        "denied: omitted"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_groups_and_offsets_needs_delete_on_the_group() {
    let h = harness().await;
    let (alice, admin) = (As(&h, ALICE), As(&h, ADMIN));
    for group in ["billing", "billing-old", "audit"] {
        assert_eq!(
            admin
                .commit(8, group, -1, "", &[("orders-eu", 0, 5), ("payments", 0, 7)])
                .await,
            owned(&[("orders-eu", 0, 0), ("payments", 0, 0)])
        );
    }
    // READ on the group is not DELETE.
    assert_eq!(
        alice.delete_groups(&["billing", "other"]).await,
        vec![
            ("billing".to_owned(), GROUP_AUTHORIZATION_FAILED),
            ("other".to_owned(), GROUP_AUTHORIZATION_FAILED),
        ]
    );
    assert_eq!(
        alice.offset_delete("billing", &[("orders-eu", 0)]).await,
        (GROUP_AUTHORIZATION_FAILED, vec![])
    );
    assert_eq!(stored_offsets(&h, "billing").await, 2, "nothing deleted");

    h.create_acls(vec![acl(
        ResourceType::Group,
        "billing",
        PatternType::Prefixed,
        ALICE,
        Operation::Delete,
        Permission::Allow,
    )])
    .await;
    // OffsetDelete: READ on each topic as well.
    assert_eq!(
        alice
            .offset_delete("billing", &[("orders-eu", 0), ("payments", 0)])
            .await,
        (
            0,
            owned(&[
                ("orders-eu", 0, 0),
                ("payments", 0, TOPIC_AUTHORIZATION_FAILED)
            ])
        )
    );
    let (_, left) = admin.fetch(7, "billing", None).await;
    assert_eq!(offsets(&left), vec![("payments", 0, 7)]);
    // DeleteGroups: per group.
    assert_eq!(
        alice.delete_groups(&["billing-old", "audit"]).await,
        vec![
            ("billing-old".to_owned(), 0),
            ("audit".to_owned(), GROUP_AUTHORIZATION_FAILED),
        ]
    );
    assert_eq!(stored_offsets(&h, "billing-old").await, 0);
    assert_eq!(stored_offsets(&h, "audit").await, 2);
    // The super user deletes anything.
    assert_eq!(
        admin.offset_delete("audit", &[("payments", 0)]).await,
        (0, owned(&[("payments", 0, 0)]))
    );
    assert_eq!(
        admin.delete_groups(&["audit"]).await,
        vec![("audit".to_owned(), 0)]
    );
    assert_eq!(stored_offsets(&h, "audit").await, 0);
    h.stop().await;
}

/// How many offsets `group` has, as the super user sees them.
async fn stored_offsets(h: &Harness, group: &str) -> usize {
    let (error, all) = As(h, ADMIN).fetch(7, group, None).await;
    assert_eq!(error, 0);
    all.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_beats_an_allow_but_not_a_super_user() {
    let h = harness().await;
    let (alice, admin) = (As(&h, ALICE), As(&h, ADMIN));
    let (member, generation) = alice.stable_group("billing").await;
    h.create_acls(vec![
        // Alice may not read `orders-eu`, though `orders-*` allows it.
        deny(ALICE, ResourceType::Topic, "orders-eu", Operation::Read),
        // Nobody may describe `billing`; alice's READ implies DESCRIBE, the DENY wins.
        deny(
            "User:*",
            ResourceType::Group,
            "billing",
            Operation::Describe,
        ),
    ])
    .await;
    assert_eq!(
        alice
            .commit(
                8,
                "billing",
                generation,
                &member,
                &[("orders-eu", 0, 1), ("orders-us", 0, 2)]
            )
            .await,
        owned(&[
            ("orders-eu", 0, TOPIC_AUTHORIZATION_FAILED),
            ("orders-us", 0, 0)
        ])
    );
    // READ on the group is still allowed (a DENY of DESCRIBE does not deny READ) ...
    assert_eq!(alice.heartbeat("billing", generation, &member).await, 0);
    // ... DESCRIBE is not.
    assert_eq!(
        alice.find(3, 0, &["billing"]).await[0].0,
        GROUP_AUTHORIZATION_FAILED
    );
    assert_eq!(
        alice.fetch(7, "billing", None).await,
        (GROUP_AUTHORIZATION_FAILED, vec![])
    );
    assert_eq!(
        alice.describe(5, &["billing"]).await[0].1,
        GROUP_AUTHORIZATION_FAILED
    );
    assert_eq!(alice.list(5).await, Vec::<String>::new());
    // The super user is above every ACL.
    assert_eq!(admin.find(4, 0, &["billing"]).await[0].0, 0);
    assert_eq!(
        admin
            .commit(8, "billing", generation, &member, &[("orders-eu", 0, 3)])
            .await,
        owned(&[("orders-eu", 0, 0)])
    );
    let (error, all) = admin.fetch(8, "billing", None).await;
    assert_eq!(error, 0);
    assert_eq!(
        offsets(&all),
        vec![("orders-eu", 0, 3), ("orders-us", 0, 2)]
    );
    assert_eq!(admin.describe(6, &["billing"]).await[0].1, 0);
    h.stop().await;
}

/// Without an authorizer every principal may do everything (the existing behaviour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_authorizer_nothing_is_checked() {
    let h = Harness::start_with(&[("group.min.session.timeout.ms", "1000")]).await;
    h.create_topic("payments", 1).await;
    h.wait_for_coordinator().await;
    let alice = As(&h, ALICE);
    assert_eq!(alice.find(4, 0, &["other"]).await[0].0, 0);
    let (member, generation) = alice.stable_group("other").await;
    assert_eq!(alice.heartbeat("other", generation, &member).await, 0);
    assert_eq!(
        alice
            .commit(8, "other", generation, &member, &[("payments", 0, 4)])
            .await,
        owned(&[("payments", 0, 0)])
    );
    let (error, all) = alice.fetch(8, "other", None).await;
    assert_eq!((error, offsets(&all)), (0, vec![("payments", 0, 4)]));
    assert_eq!(alice.list(5).await, vec!["other"]);
    assert_eq!(alice.describe(5, &["other"]).await[0].1, 0);
    assert_eq!(alice.leave(3, "other", &member).await, (0, vec![0]));
    assert_eq!(
        alice.offset_delete("other", &[("payments", 0)]).await,
        (0, owned(&[("payments", 0, 0)]))
    );
    assert_eq!(
        alice.delete_groups(&["other"]).await,
        vec![("other".to_owned(), 0)]
    );
    h.stop().await;
}
