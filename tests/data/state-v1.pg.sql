--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)


--
-- Name: __SCHEMA__; Type: SCHEMA; Schema: -; Owner: -
--





--
-- Name: articles; Type: TABLE; Schema: __SCHEMA__; Owner: -
--

CREATE TABLE __SCHEMA__.articles (
    id bigint NOT NULL,
    feed_key character varying NOT NULL,
    entry_key character varying NOT NULL,
    story_key character varying NOT NULL,
    title text NOT NULL,
    summary text NOT NULL,
    content text NOT NULL,
    link text NOT NULL,
    canonical_url text NOT NULL,
    author text NOT NULL,
    categories json NOT NULL,
    published timestamp with time zone,
    source text NOT NULL,
    tags json NOT NULL,
    first_seen_at timestamp with time zone NOT NULL,
    last_seen_at timestamp with time zone NOT NULL
);


--
-- Name: articles_id_seq; Type: SEQUENCE; Schema: __SCHEMA__; Owner: -
--

CREATE SEQUENCE __SCHEMA__.articles_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: articles_id_seq; Type: SEQUENCE OWNED BY; Schema: __SCHEMA__; Owner: -
--

ALTER SEQUENCE __SCHEMA__.articles_id_seq OWNED BY __SCHEMA__.articles.id;


--
-- Name: feeds; Type: TABLE; Schema: __SCHEMA__; Owner: -
--

CREATE TABLE __SCHEMA__.feeds (
    feed_key character varying NOT NULL,
    etag text,
    last_modified text,
    next_poll_at timestamp with time zone,
    lease_until timestamp with time zone,
    consecutive_errors integer NOT NULL,
    last_error text,
    last_attempt_at timestamp with time zone,
    last_success_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: matches; Type: TABLE; Schema: __SCHEMA__; Owner: -
--

CREATE TABLE __SCHEMA__.matches (
    id bigint NOT NULL,
    rule character varying NOT NULL,
    article_id bigint NOT NULL,
    explanation json NOT NULL,
    matched_at timestamp with time zone NOT NULL
);


--
-- Name: matches_id_seq; Type: SEQUENCE; Schema: __SCHEMA__; Owner: -
--

CREATE SEQUENCE __SCHEMA__.matches_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: matches_id_seq; Type: SEQUENCE OWNED BY; Schema: __SCHEMA__; Owner: -
--

ALTER SEQUENCE __SCHEMA__.matches_id_seq OWNED BY __SCHEMA__.matches.id;


--
-- Name: meta; Type: TABLE; Schema: __SCHEMA__; Owner: -
--

CREATE TABLE __SCHEMA__.meta (
    key character varying(64) NOT NULL,
    value text NOT NULL
);


--
-- Name: outbox; Type: TABLE; Schema: __SCHEMA__; Owner: -
--

CREATE TABLE __SCHEMA__.outbox (
    id bigint NOT NULL,
    rule character varying NOT NULL,
    channel character varying NOT NULL,
    mode character varying(16) NOT NULL,
    article_id bigint NOT NULL,
    story_key character varying NOT NULL,
    status character varying(16) NOT NULL,
    attempts integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    next_attempt_at timestamp with time zone,
    lease_until timestamp with time zone,
    sent_at timestamp with time zone,
    last_error text,
    CONSTRAINT ck_outbox_mode CHECK (((mode)::text = ANY ((ARRAY['immediate'::character varying, 'digest'::character varying])::text[]))),
    CONSTRAINT ck_outbox_status CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'sending'::character varying, 'sent'::character varying, 'dead'::character varying])::text[])))
);


--
-- Name: outbox_id_seq; Type: SEQUENCE; Schema: __SCHEMA__; Owner: -
--

CREATE SEQUENCE __SCHEMA__.outbox_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: outbox_id_seq; Type: SEQUENCE OWNED BY; Schema: __SCHEMA__; Owner: -
--

ALTER SEQUENCE __SCHEMA__.outbox_id_seq OWNED BY __SCHEMA__.outbox.id;


--
-- Name: rule_backfills; Type: TABLE; Schema: __SCHEMA__; Owner: -
--

CREATE TABLE __SCHEMA__.rule_backfills (
    rule character varying NOT NULL,
    done_at timestamp with time zone NOT NULL,
    matched integer NOT NULL
);


--
-- Name: articles id; Type: DEFAULT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.articles ALTER COLUMN id SET DEFAULT nextval('__SCHEMA__.articles_id_seq'::regclass);


--
-- Name: matches id; Type: DEFAULT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.matches ALTER COLUMN id SET DEFAULT nextval('__SCHEMA__.matches_id_seq'::regclass);


--
-- Name: outbox id; Type: DEFAULT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.outbox ALTER COLUMN id SET DEFAULT nextval('__SCHEMA__.outbox_id_seq'::regclass);


--
-- Data for Name: articles; Type: TABLE DATA; Schema: __SCHEMA__; Owner: -
--

INSERT INTO __SCHEMA__.articles VALUES (1, 'https://www.koreaherald.com/rss/newsAll', 'guid-0', 'story-0', 'Russia and North Korea story 0', 'Summary 0: Russia and North Korea sign a pact.', '', 'https://www.koreaherald.com/article/1000', 'https://www.koreaherald.com/article/1000', 'Yonhap', '["North Korea"]', '2026-11-20 08:00:00+00', 'The Korea Herald', '["korea"]', '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.articles VALUES (2, 'https://www.koreaherald.com/rss/newsAll', 'guid-1', 'story-1', 'Russia and North Korea story 1', 'Summary 1: Russia and North Korea sign a pact.', '', 'https://www.koreaherald.com/article/1001', 'https://www.koreaherald.com/article/1001', 'Yonhap', '["North Korea"]', '2026-11-20 07:00:00+00', 'The Korea Herald', '["korea"]', '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.articles VALUES (3, 'https://www.koreaherald.com/rss/newsAll', 'guid-2', 'story-2', 'Russia and North Korea story 2', 'Summary 2: Russia and North Korea sign a pact.', '', 'https://www.koreaherald.com/article/1002', 'https://www.koreaherald.com/article/1002', 'Yonhap', '["North Korea"]', '2026-11-20 06:00:00+00', 'The Korea Herald', '["korea"]', '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.articles VALUES (4, 'https://www.koreaherald.com/rss/newsAll', 'guid-3', 'story-3', 'Russia and North Korea story 3', 'Summary 3: Russia and North Korea sign a pact.', '', 'https://www.koreaherald.com/article/1003', 'https://www.koreaherald.com/article/1003', 'Yonhap', '["North Korea"]', '2026-11-20 05:00:00+00', 'The Korea Herald', '["korea"]', '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.articles VALUES (5, 'https://www.koreaherald.com/rss/newsAll', 'guid-4', 'story-4', 'Russia and North Korea story 4', 'Summary 4: Russia and North Korea sign a pact.', '', 'https://www.koreaherald.com/article/1004', 'https://www.koreaherald.com/article/1004', 'Yonhap', '["North Korea"]', '2026-11-20 04:00:00+00', 'The Korea Herald', '["korea"]', '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.articles VALUES (6, 'https://www.koreaherald.com/rss/newsAll', 'guid-5', 'story-5', 'Russia and North Korea story 5', 'Summary 5: Russia and North Korea sign a pact.', '', 'https://www.koreaherald.com/article/1005', 'https://www.koreaherald.com/article/1005', 'Yonhap', '["North Korea"]', '2026-11-20 03:00:00+00', 'The Korea Herald', '["korea"]', '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.articles VALUES (7, 'https://alice:s3cret-pw@feeds.example.org/private.xml?token=tok-123456', 'guid-10', 'story-10', 'Russia and North Korea story 10', 'Summary 10: Russia and North Korea sign a pact.', '', 'http://feeds.example.org/a/10', 'http://feeds.example.org/a/10', 'Yonhap', '["North Korea"]', '2026-11-19 22:00:00+00', 'The Korea Herald', '["korea"]', '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00');


--
-- Data for Name: feeds; Type: TABLE DATA; Schema: __SCHEMA__; Owner: -
--

INSERT INTO __SCHEMA__.feeds VALUES ('https://www.koreaherald.com/rss/newsAll', '"v1"', NULL, '2026-11-20 08:10:00+00', NULL, 0, NULL, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.feeds VALUES ('https://alice:s3cret-pw@feeds.example.org/private.xml?token=tok-123456', NULL, NULL, '2026-11-20 08:10:00+00', NULL, 0, NULL, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.feeds VALUES ('https://down.example.net/rss.xml', NULL, NULL, '2026-11-20 08:20:00+00', NULL, 1, 'HTTP 503 Service Unavailable', '2026-11-20 08:00:00+00', NULL, '2026-11-20 08:00:00+00');


--
-- Data for Name: matches; Type: TABLE DATA; Schema: __SCHEMA__; Owner: -
--

INSERT INTO __SCHEMA__.matches VALUES (1, 'russia-north-korea', 1, '{"hits": [{"term": "russia", "field": "title", "start": 0, "end": 6}, {"term": "north korea", "field": "title", "start": 11, "end": 22}], "snippet": "Russia and North Korea story 0", "highlights": [[0, 6], [11, 22]]}', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.matches VALUES (2, 'russia-north-korea', 2, '{"hits": [{"term": "russia", "field": "title", "start": 0, "end": 6}, {"term": "north korea", "field": "title", "start": 11, "end": 22}], "snippet": "Russia and North Korea story 1", "highlights": [[0, 6], [11, 22]]}', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.matches VALUES (3, 'russia-north-korea', 3, '{"hits": [{"term": "russia", "field": "title", "start": 0, "end": 6}, {"term": "north korea", "field": "title", "start": 11, "end": 22}], "snippet": "Russia and North Korea story 2", "highlights": [[0, 6], [11, 22]]}', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.matches VALUES (4, 'russia-north-korea', 4, '{"hits": [{"term": "russia", "field": "title", "start": 0, "end": 6}, {"term": "north korea", "field": "title", "start": 11, "end": 22}], "snippet": "Russia and North Korea story 3", "highlights": [[0, 6], [11, 22]]}', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.matches VALUES (5, 'russia-north-korea', 5, '{"hits": [{"term": "russia", "field": "title", "start": 0, "end": 6}, {"term": "north korea", "field": "title", "start": 11, "end": 22}], "snippet": "Russia and North Korea story 4", "highlights": [[0, 6], [11, 22]]}', '2026-11-20 08:00:00+00');
INSERT INTO __SCHEMA__.matches VALUES (6, 'russia-north-korea', 6, '{"hits": [{"term": "russia", "field": "title", "start": 0, "end": 6}, {"term": "north korea", "field": "title", "start": 11, "end": 22}], "snippet": "Russia and North Korea story 5", "highlights": [[0, 6], [11, 22]]}', '2026-11-20 08:00:00+00');


--
-- Data for Name: meta; Type: TABLE DATA; Schema: __SCHEMA__; Owner: -
--

INSERT INTO __SCHEMA__.meta VALUES ('schema_version', '1');


--
-- Data for Name: outbox; Type: TABLE DATA; Schema: __SCHEMA__; Owner: -
--

INSERT INTO __SCHEMA__.outbox VALUES (9, 'russia-north-korea', 'desk-hook', 'immediate', 3, 'story-2', 'sending', 1, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', '2026-11-20 08:05:00+00', NULL, NULL);
INSERT INTO __SCHEMA__.outbox VALUES (10, 'russia-north-korea', 'desk-hook', 'immediate', 4, 'story-3', 'sending', 1, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', '2026-11-20 08:05:00+00', NULL, NULL);
INSERT INTO __SCHEMA__.outbox VALUES (11, 'russia-north-korea', 'desk-hook', 'immediate', 5, 'story-4', 'sending', 1, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', '2026-11-20 08:05:00+00', NULL, NULL);
INSERT INTO __SCHEMA__.outbox VALUES (12, 'russia-north-korea', 'desk-hook', 'immediate', 6, 'story-5', 'sending', 1, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', '2026-11-20 08:05:00+00', NULL, NULL);
INSERT INTO __SCHEMA__.outbox VALUES (1, 'russia-north-korea', 'desk-email', 'immediate', 1, 'story-0', 'sent', 1, '2026-11-20 08:00:00+00', NULL, NULL, '2026-11-20 08:00:00+00', NULL);
INSERT INTO __SCHEMA__.outbox VALUES (2, 'russia-north-korea', 'desk-email', 'immediate', 2, 'story-1', 'sent', 1, '2026-11-20 08:00:00+00', NULL, NULL, '2026-11-20 08:00:00+00', NULL);
INSERT INTO __SCHEMA__.outbox VALUES (3, 'russia-north-korea', 'desk-email', 'immediate', 3, 'story-2', 'dead', 1, '2026-11-20 08:00:00+00', NULL, NULL, NULL, 'webhook https://hooks.example.org/****: HTTP 404');
INSERT INTO __SCHEMA__.outbox VALUES (4, 'russia-north-korea', 'desk-email', 'immediate', 4, 'story-3', 'pending', 1, '2026-11-20 08:00:00+00', '2026-11-20 08:01:00+00', NULL, NULL, 'smtp: refused');
INSERT INTO __SCHEMA__.outbox VALUES (5, 'russia-north-korea', 'desk-email', 'immediate', 5, 'story-4', 'pending', 0, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', NULL, NULL, NULL);
INSERT INTO __SCHEMA__.outbox VALUES (6, 'russia-north-korea', 'desk-email', 'immediate', 6, 'story-5', 'pending', 0, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', NULL, NULL, NULL);
INSERT INTO __SCHEMA__.outbox VALUES (7, 'russia-north-korea', 'desk-hook', 'immediate', 1, 'story-0', 'pending', 0, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', NULL, NULL, NULL);
INSERT INTO __SCHEMA__.outbox VALUES (8, 'russia-north-korea', 'desk-hook', 'immediate', 2, 'story-1', 'pending', 0, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', NULL, NULL, NULL);


--
-- Data for Name: rule_backfills; Type: TABLE DATA; Schema: __SCHEMA__; Owner: -
--

INSERT INTO __SCHEMA__.rule_backfills VALUES ('russia-north-korea', '2026-11-20 08:00:00+00', 0);


--
-- Name: articles_id_seq; Type: SEQUENCE SET; Schema: __SCHEMA__; Owner: -
--

SELECT pg_catalog.setval('__SCHEMA__.articles_id_seq', 7, true);


--
-- Name: matches_id_seq; Type: SEQUENCE SET; Schema: __SCHEMA__; Owner: -
--

SELECT pg_catalog.setval('__SCHEMA__.matches_id_seq', 6, true);


--
-- Name: outbox_id_seq; Type: SEQUENCE SET; Schema: __SCHEMA__; Owner: -
--

SELECT pg_catalog.setval('__SCHEMA__.outbox_id_seq', 12, true);


--
-- Name: articles pk_articles; Type: CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.articles
    ADD CONSTRAINT pk_articles PRIMARY KEY (id);


--
-- Name: feeds pk_feeds; Type: CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.feeds
    ADD CONSTRAINT pk_feeds PRIMARY KEY (feed_key);


--
-- Name: matches pk_matches; Type: CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.matches
    ADD CONSTRAINT pk_matches PRIMARY KEY (id);


--
-- Name: meta pk_meta; Type: CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.meta
    ADD CONSTRAINT pk_meta PRIMARY KEY (key);


--
-- Name: outbox pk_outbox; Type: CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.outbox
    ADD CONSTRAINT pk_outbox PRIMARY KEY (id);


--
-- Name: rule_backfills pk_rule_backfills; Type: CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.rule_backfills
    ADD CONSTRAINT pk_rule_backfills PRIMARY KEY (rule);


--
-- Name: articles uq_articles_feed_key_entry_key; Type: CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.articles
    ADD CONSTRAINT uq_articles_feed_key_entry_key UNIQUE (feed_key, entry_key);


--
-- Name: matches uq_matches_rule_article_id; Type: CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.matches
    ADD CONSTRAINT uq_matches_rule_article_id UNIQUE (rule, article_id);


--
-- Name: outbox uq_outbox_rule_channel_story_key; Type: CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.outbox
    ADD CONSTRAINT uq_outbox_rule_channel_story_key UNIQUE (rule, channel, story_key);


--
-- Name: ix_articles_first_seen_at_id; Type: INDEX; Schema: __SCHEMA__; Owner: -
--

CREATE INDEX ix_articles_first_seen_at_id ON __SCHEMA__.articles USING btree (first_seen_at, id);


--
-- Name: ix_articles_last_seen_at; Type: INDEX; Schema: __SCHEMA__; Owner: -
--

CREATE INDEX ix_articles_last_seen_at ON __SCHEMA__.articles USING btree (last_seen_at);


--
-- Name: ix_articles_story_key; Type: INDEX; Schema: __SCHEMA__; Owner: -
--

CREATE INDEX ix_articles_story_key ON __SCHEMA__.articles USING btree (story_key);


--
-- Name: ix_outbox_status_next_attempt_at; Type: INDEX; Schema: __SCHEMA__; Owner: -
--

CREATE INDEX ix_outbox_status_next_attempt_at ON __SCHEMA__.outbox USING btree (status, next_attempt_at);


--
-- Name: matches fk_matches_article_id_articles; Type: FK CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.matches
    ADD CONSTRAINT fk_matches_article_id_articles FOREIGN KEY (article_id) REFERENCES __SCHEMA__.articles(id);


--
-- Name: outbox fk_outbox_article_id_articles; Type: FK CONSTRAINT; Schema: __SCHEMA__; Owner: -
--

ALTER TABLE ONLY __SCHEMA__.outbox
    ADD CONSTRAINT fk_outbox_article_id_articles FOREIGN KEY (article_id) REFERENCES __SCHEMA__.articles(id);


--
-- PostgreSQL database dump complete
--


