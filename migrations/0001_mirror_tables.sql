-- Memora reporting mirror, version 1 (persistence.md "MariaDB reporting mirror").
-- A state mirror of the engine's checkpointed rows; the engine owns these tables.
-- Ids are VARCHAR with a binary collation: they compare exactly as in the engine.

CREATE TABLE players (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    email VARCHAR(254) NOT NULL,
    display_name VARCHAR(200) NOT NULL,
    role VARCHAR(16) NOT NULL,
    plan_id VARCHAR(191) NULL,
    grade VARCHAR(191) NULL,
    stream VARCHAR(191) NULL,
    timezone VARCHAR(64) NOT NULL,
    created_at DATETIME(3) NOT NULL,
    disabled BOOLEAN NOT NULL,
    synced_at DATETIME(3) NOT NULL,
    PRIMARY KEY (id),
    KEY players_plan (plan_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE wallets (
    player_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    total_xp BIGINT NOT NULL,
    current_streak INT UNSIGNED NOT NULL,
    longest_streak INT UNSIGNED NOT NULL,
    last_success_date DATE NULL,
    last_played_at DATETIME(3) NULL,
    synced_at DATETIME(3) NOT NULL,
    PRIMARY KEY (player_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE subject_progress (
    player_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    subject_id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    passed_lessons INT UNSIGNED NOT NULL,
    total_lessons INT UNSIGNED NOT NULL,
    completion_percentage DECIMAL(5,2) NOT NULL,
    total_xp_earned BIGINT UNSIGNED NOT NULL,
    passed_bitmap BLOB NOT NULL COMMENT 'roaring portable serialization of passed bit indexes',
    best_hearts JSON NOT NULL CHECK (JSON_VALID(best_hearts)),
    last_lesson_completed VARCHAR(191) NULL,
    updated_at DATETIME(3) NOT NULL,
    synced_at DATETIME(3) NOT NULL,
    PRIMARY KEY (player_id, subject_id),
    KEY subject_progress_subject (subject_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE content_subjects (
    id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    title VARCHAR(500) NOT NULL,
    is_published BOOLEAN NOT NULL,
    lesson_count INT UNSIGNED NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE content_lessons (
    id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    subject_id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    topic_id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    bit_index INT UNSIGNED NOT NULL,
    title VARCHAR(500) NOT NULL,
    PRIMARY KEY (id),
    KEY content_lessons_subject (subject_id, bit_index)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Filled when SRS joins the mirror. One partition per season (`p<number>`) is added
-- when the season is created; rows of unknown seasons land in the default partition.
CREATE TABLE srs_cards (
    player_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    season_id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    question_id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    state TINYINT UNSIGNED NOT NULL,
    stability DOUBLE NOT NULL,
    difficulty DOUBLE NOT NULL,
    due DATETIME(3) NOT NULL,
    last_review DATETIME(3) NULL,
    reps INT UNSIGNED NOT NULL,
    lapses INT UNSIGNED NOT NULL,
    subject_id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    topic_id VARCHAR(191) COLLATE utf8mb4_bin NULL,
    synced_at DATETIME(3) NOT NULL,
    PRIMARY KEY (player_id, season_id, question_id),
    KEY srs_cards_due (player_id, season_id, due)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
PARTITION BY LIST COLUMNS (season_id) (
    PARTITION pdefault DEFAULT
);

CREATE TABLE srs_cards_archive (
    player_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    season_id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    question_id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    state TINYINT UNSIGNED NOT NULL,
    stability DOUBLE NOT NULL,
    difficulty DOUBLE NOT NULL,
    due DATETIME(3) NOT NULL,
    last_review DATETIME(3) NULL,
    reps INT UNSIGNED NOT NULL,
    lapses INT UNSIGNED NOT NULL,
    subject_id VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    topic_id VARCHAR(191) COLLATE utf8mb4_bin NULL,
    archived_at DATETIME(3) NOT NULL,
    eligible_for_deletion BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (player_id, season_id, question_id),
    KEY srs_cards_archive_archived (archived_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The mirror's position, written in the same transaction as the rows it covers:
-- every redb queue entry at or below `position` is in these tables (docs/mirror.md).
CREATE TABLE mirror_state (
    id TINYINT UNSIGNED NOT NULL,
    checkpoint_no BIGINT UNSIGNED NOT NULL,
    position VARBINARY(1024) NOT NULL,
    updated_at DATETIME(3) NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
