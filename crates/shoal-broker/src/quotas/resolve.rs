//! Which quota applies to a (user, client id), and which clients share it: Kafka's
//! `DefaultQuotaCallback`, a pure function of the image's quotas.
//!
//! The most specific entity with a value for the key wins, in Kafka's order:
//! 1. user and client id, 2. user and the default client id, 3. the user alone,
//! 4. the default user and the client id, 5. the default user and default client id,
//! 6. the default user alone, 7. the client id alone, 8. the default client id alone.
//!
//! The bytes of clients that match the same quota are counted together only where the quota
//! names them together: a quota on `user=alice` is shared by all of alice's client ids, one
//! on `user=<default>` gives each user their own allowance. [`SensorKey`] says which.

use shoal_meta::client_quotas::{ClientQuotaEntity, ClientQuotas, QuotaEntityName};

/// Whose bytes count together: the user and client id dimensions the applying quota names
/// (an empty string for a dimension it does not name), as Kafka's quota metric tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SensorKey {
    pub user: String,
    pub client_id: String,
}

/// The quota on `key` for `user` and `client_id`, in bytes per second, and who shares it;
/// `None` when no entity sets one.
pub fn resolve(
    quotas: &ClientQuotas,
    key: &str,
    user: &str,
    client_id: &str,
) -> Option<(SensorKey, f64)> {
    use QuotaEntityName::{Default, Name};
    if quotas.is_empty() {
        return None;
    }
    let u = || Name(user.to_string());
    let c = || Name(client_id.to_string());
    // (entity, whether the user dimension counts, whether the client id dimension counts)
    let candidates = [
        (ClientQuotaEntity::user_and_client_id(u(), c()), true, true),
        (
            ClientQuotaEntity::user_and_client_id(u(), Default),
            true,
            true,
        ),
        (ClientQuotaEntity::user(u()), true, false),
        (
            ClientQuotaEntity::user_and_client_id(Default, c()),
            true,
            true,
        ),
        (
            ClientQuotaEntity::user_and_client_id(Default, Default),
            true,
            true,
        ),
        (ClientQuotaEntity::user(Default), true, false),
        (ClientQuotaEntity::client_id(c()), false, true),
        (ClientQuotaEntity::client_id(Default), false, true),
    ];
    candidates
        .into_iter()
        .find_map(|(entity, by_user, by_client)| {
            quotas.get(&entity, key).map(|bound| {
                let sensor = SensorKey {
                    user: if by_user {
                        user.to_string()
                    } else {
                        String::new()
                    },
                    client_id: if by_client {
                        client_id.to_string()
                    } else {
                        String::new()
                    },
                };
                (sensor, bound)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_meta::client_quotas::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE};

    fn name(n: &str) -> QuotaEntityName {
        QuotaEntityName::Name(n.to_string())
    }

    /// Every level of Kafka's precedence set, each with its own value (1 most specific).
    fn all_levels() -> Vec<(ClientQuotaEntity, f64)> {
        use QuotaEntityName::Default;
        vec![
            (
                ClientQuotaEntity::user_and_client_id(name("alice"), name("app")),
                1.0,
            ),
            (
                ClientQuotaEntity::user_and_client_id(name("alice"), Default),
                2.0,
            ),
            (ClientQuotaEntity::user(name("alice")), 3.0),
            (
                ClientQuotaEntity::user_and_client_id(Default, name("app")),
                4.0,
            ),
            (ClientQuotaEntity::user_and_client_id(Default, Default), 5.0),
            (ClientQuotaEntity::user(Default), 6.0),
            (ClientQuotaEntity::client_id(name("app")), 7.0),
            (ClientQuotaEntity::client_id(Default), 8.0),
        ]
    }

    fn sensor(user: &str, client_id: &str) -> SensorKey {
        SensorKey {
            user: user.into(),
            client_id: client_id.into(),
        }
    }

    #[test]
    fn the_most_specific_quota_wins_in_kafka_s_order() {
        // Remove levels from the most specific down: each time the next one applies.
        let levels = all_levels();
        let expected_sensors = [
            sensor("alice", "app"),
            sensor("alice", "app"),
            sensor("alice", ""),
            sensor("alice", "app"),
            sensor("alice", "app"),
            sensor("alice", ""),
            sensor("", "app"),
            sensor("", "app"),
        ];
        for skip in 0..levels.len() {
            let mut quotas = ClientQuotas::default();
            for (entity, value) in &levels[skip..] {
                quotas.set(entity, PRODUCER_BYTE_RATE, Some(*value));
            }
            let got = resolve(&quotas, PRODUCER_BYTE_RATE, "alice", "app");
            assert_eq!(
                got,
                Some((expected_sensors[skip].clone(), (skip + 1) as f64)),
                "without the first {skip}"
            );
            // Another key has no quota at all.
            assert_eq!(resolve(&quotas, CONSUMER_BYTE_RATE, "alice", "app"), None);
        }
        assert_eq!(
            resolve(&ClientQuotas::default(), PRODUCER_BYTE_RATE, "alice", "app"),
            None
        );
    }

    #[test]
    fn other_users_and_clients_fall_to_the_defaults() {
        let mut quotas = ClientQuotas::default();
        for (entity, value) in all_levels() {
            quotas.set(&entity, PRODUCER_BYTE_RATE, Some(value));
        }
        let cases = [
            ("bob", "app", sensor("bob", "app"), 4.0),
            ("bob", "other", sensor("bob", "other"), 5.0),
            ("alice", "other", sensor("alice", "other"), 2.0),
        ];
        for (user, client, want_sensor, want) in cases {
            assert_eq!(
                resolve(&quotas, PRODUCER_BYTE_RATE, user, client),
                Some((want_sensor, want)),
                "{user} {client}"
            );
        }
        let mut only_clients = ClientQuotas::default();
        only_clients.set(
            &ClientQuotaEntity::client_id(QuotaEntityName::Default),
            PRODUCER_BYTE_RATE,
            Some(9.0),
        );
        assert_eq!(
            resolve(&only_clients, PRODUCER_BYTE_RATE, "anyone", "c1"),
            Some((sensor("", "c1"), 9.0))
        );
    }
}
