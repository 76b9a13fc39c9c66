-- The append-only logs of players.md "Audit and interaction logs" (persistence.md
-- table list): security events and admin actions in `security_events`, lesson attempts
-- and review answers in `interaction_log`. One row per redb audit record, keyed by the
-- record id (derived from the journal, so a re-sent batch overwrites the same rows).
-- Erasure anonymises rows, retention deletes them and clears client IPs, as in redb.

CREATE TABLE security_events (
    id BIGINT UNSIGNED NOT NULL,
    at DATETIME(3) NOT NULL,
    kind VARCHAR(32) CHARACTER SET ascii NOT NULL,
    player_id VARCHAR(200) COLLATE utf8mb4_bin NULL,
    actor_id VARCHAR(200) COLLATE utf8mb4_bin NULL,
    device_id VARCHAR(200) NULL,
    client_ip VARCHAR(200) NULL,
    endpoint VARCHAR(255) NULL,
    result VARCHAR(200) NOT NULL,
    detail JSON NOT NULL,
    synced_at DATETIME(3) NOT NULL,
    PRIMARY KEY (id),
    KEY security_events_at (at),
    KEY security_events_player (player_id, at),
    KEY security_events_kind (kind, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE interaction_log (
    id BIGINT UNSIGNED NOT NULL,
    at DATETIME(3) NOT NULL,
    kind VARCHAR(32) CHARACTER SET ascii NOT NULL,
    player_id VARCHAR(200) COLLATE utf8mb4_bin NULL,
    actor_id VARCHAR(200) COLLATE utf8mb4_bin NULL,
    device_id VARCHAR(200) NULL,
    client_ip VARCHAR(200) NULL,
    endpoint VARCHAR(255) NULL,
    result VARCHAR(200) NOT NULL,
    detail JSON NOT NULL,
    synced_at DATETIME(3) NOT NULL,
    PRIMARY KEY (id),
    KEY interaction_log_at (at),
    KEY interaction_log_player (player_id, at),
    KEY interaction_log_kind (kind, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
