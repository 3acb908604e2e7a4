//! The embedded broker's storage: tansu's memory engine with exact fetches and offsets.
//!
//! Two answers of tansu 0.6.0's memory engine are wrong for batches of more than one record:
//! a fetch from an offset inside a batch returns the batches *after* it (the records in between
//! are silently skipped), and `ListOffsets` latest is the last batch's base offset plus one.
//! [`MemoryStorage`] delegates everything to the engine and corrects those two answers.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tansu_sans_io::create_topics_request::CreatableTopic;
use tansu_sans_io::delete_groups_response::DeletableGroupResult;
use tansu_sans_io::delete_records_request::DeleteRecordsTopic;
use tansu_sans_io::delete_records_response::DeleteRecordsTopicResult;
use tansu_sans_io::describe_cluster_response::DescribeClusterBroker;
use tansu_sans_io::describe_configs_response::DescribeConfigsResult;
use tansu_sans_io::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use tansu_sans_io::incremental_alter_configs_request::AlterConfigsResource;
use tansu_sans_io::incremental_alter_configs_response::AlterConfigsResourceResponse;
use tansu_sans_io::list_groups_response::ListedGroup;
use tansu_sans_io::record::deflated;
use tansu_sans_io::txn_offset_commit_response::TxnOffsetCommitResponseTopic;
use tansu_sans_io::{ConfigResource, ErrorCode, IsolationLevel, ListOffset, ScramMechanism};
use tansu_storage::{
    BrokerRegistrationRequest, GroupDetail, ListOffsetResponse, MetadataResponse, NamedGroupDetail,
    OffsetCommitRequest, OffsetStage, ProducerIdResponse, Result, ScramCredential, Storage,
    StorageContainer, TopicId, Topition, TxnAddPartitionsRequest, TxnAddPartitionsResponse,
    TxnOffsetCommitRequest, UpdateError, Version,
};
use url::Url;
use uuid::Uuid;

use crate::bounds::BatchBounds;
use crate::trim::trim_to_offset;

/// tansu's memory engine (`memory://`) with fetches that start exactly at the fetch offset and
/// exact `ListOffsets` answers; every other call is passed through unchanged.
#[derive(Clone, Debug)]
pub(crate) struct MemoryStorage {
    engine: StorageContainer,
    bounds: BatchBounds,
}

impl MemoryStorage {
    /// Wraps a memory engine that has not stored anything yet.
    pub(crate) fn new(engine: StorageContainer) -> Self {
        Self {
            engine,
            bounds: BatchBounds::default(),
        }
    }

    /// Keeps the batches that hold `offset` or later, the first one cut to start at `offset`.
    fn from_offset(batches: Vec<deflated::Batch>, offset: i64) -> Result<Vec<deflated::Batch>> {
        let mut kept = batches
            .into_iter()
            .skip_while(|batch| batch.max_offset() < offset);
        let Some(first) = kept.next() else {
            return Ok(Vec::new());
        };
        let first = if first.base_offset < offset {
            trim_to_offset(first, offset)?
        } else {
            first
        };
        Ok(std::iter::once(first).chain(kept).collect())
    }

    /// The answer to `ListOffsets` earliest or latest, from the engine's offset stage, which
    /// (unlike its `list_offsets`) counts every record.
    async fn exact_offset(
        &self,
        topition: &Topition,
        request: ListOffset,
        isolation: IsolationLevel,
    ) -> Result<ListOffsetResponse> {
        let stage = self.engine.offset_stage(topition).await?;
        let offset = match (request, isolation) {
            (ListOffset::Earliest, _) => stage.log_start(),
            (_, IsolationLevel::ReadCommitted) => stage.last_stable(),
            (_, IsolationLevel::ReadUncommitted) => stage.high_watermark(),
        };
        Ok(ListOffsetResponse {
            error_code: ErrorCode::None,
            timestamp: None,
            offset: Some(offset),
        })
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn produce(
        &self,
        transaction_id: Option<&str>,
        topition: &Topition,
        batch: deflated::Batch,
    ) -> Result<i64> {
        let last_offset_delta = i64::from(batch.last_offset_delta);
        let base = self.engine.produce(transaction_id, topition, batch).await?;
        self.bounds.record(topition, base, base + last_offset_delta);
        Ok(base)
    }

    async fn fetch(
        &self,
        topition: &'_ Topition,
        offset: i64,
        min_bytes: u32,
        max_bytes: u32,
        isolation: IsolationLevel,
    ) -> Result<Vec<deflated::Batch>> {
        // The engine returns only batches whose base offset is at or after the offset it is
        // asked for, so ask for the start of the batch holding `offset`. When that batch is
        // unknown (e.g. written by a transaction marker), every round learns the bounds of the
        // batches it got and the next round starts later, until `offset` is reached.
        loop {
            let start = self.bounds.fetch_start(topition, offset);
            let batches = self
                .engine
                .fetch(topition, start, min_bytes, max_bytes, isolation)
                .await?;
            for batch in &batches {
                self.bounds
                    .record(topition, batch.base_offset, batch.max_offset());
            }
            match batches.last() {
                Some(last) if last.max_offset() < offset => continue,
                _ => return Self::from_offset(batches, offset),
            }
        }
    }

    async fn list_offsets(
        &self,
        isolation_level: IsolationLevel,
        offsets: &[(Topition, ListOffset)],
    ) -> Result<Vec<(Topition, ListOffsetResponse)>> {
        let mut responses = Vec::with_capacity(offsets.len());
        for (topition, request) in offsets {
            let response = match request {
                // The engine answers timestamps from the time each batch was stored: the base of
                // the first batch stored after the time, which hides no record.
                ListOffset::Timestamp(_) => {
                    let found = self
                        .engine
                        .list_offsets(
                            isolation_level,
                            std::slice::from_ref(&(topition.clone(), *request)),
                        )
                        .await?
                        .pop()
                        .map(|(_, response)| response)
                        .unwrap_or_default();
                    if found.timestamp.is_none() {
                        // No batch was stored after the time. The engine says offset 0, which a
                        // client takes for the first message; Kafka answers -1: no such message.
                        ListOffsetResponse {
                            offset: Some(-1),
                            ..found
                        }
                    } else {
                        found
                    }
                }
                exact => self.exact_offset(topition, *exact, isolation_level).await?,
            };
            responses.push((topition.clone(), response));
        }
        Ok(responses)
    }

    async fn create_topic(&self, topic: CreatableTopic, validate_only: bool) -> Result<Uuid> {
        let name = topic.name.clone();
        let id = self.engine.create_topic(topic, validate_only).await?;
        if !validate_only {
            self.bounds.forget_topic(&name);
        }
        Ok(id)
    }

    async fn offset_stage(&self, topition: &Topition) -> Result<OffsetStage> {
        self.engine.offset_stage(topition).await
    }

    async fn register_broker(&self, broker_registration: BrokerRegistrationRequest) -> Result<()> {
        self.engine.register_broker(broker_registration).await
    }

    async fn incremental_alter_resource(
        &self,
        resource: AlterConfigsResource,
    ) -> Result<AlterConfigsResourceResponse> {
        self.engine.incremental_alter_resource(resource).await
    }

    async fn delete_records(
        &self,
        topics: &[DeleteRecordsTopic],
    ) -> Result<Vec<DeleteRecordsTopicResult>> {
        self.engine.delete_records(topics).await
    }

    async fn delete_topic(&self, topic: &TopicId) -> Result<ErrorCode> {
        self.engine.delete_topic(topic).await
    }

    async fn brokers(&self) -> Result<Vec<DescribeClusterBroker>> {
        self.engine.brokers().await
    }

    async fn offset_commit(
        &self,
        group_id: &str,
        retention_time_ms: Option<Duration>,
        offsets: &[(Topition, OffsetCommitRequest)],
    ) -> Result<Vec<(Topition, ErrorCode)>> {
        self.engine
            .offset_commit(group_id, retention_time_ms, offsets)
            .await
    }

    async fn offset_fetch(
        &self,
        group_id: Option<&str>,
        topics: &[Topition],
        require_stable: Option<bool>,
    ) -> Result<BTreeMap<Topition, i64>> {
        self.engine
            .offset_fetch(group_id, topics, require_stable)
            .await
    }

    async fn committed_offset_topitions(&self, group_id: &str) -> Result<BTreeMap<Topition, i64>> {
        self.engine.committed_offset_topitions(group_id).await
    }

    async fn metadata(&self, topics: Option<&[TopicId]>) -> Result<MetadataResponse> {
        self.engine.metadata(topics).await
    }

    async fn upsert_user_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    ) -> Result<()> {
        self.engine
            .upsert_user_scram_credential(user, mechanism, credential)
            .await
    }

    async fn delete_user_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<()> {
        self.engine
            .delete_user_scram_credential(user, mechanism)
            .await
    }

    async fn user_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<Option<ScramCredential>> {
        self.engine.user_scram_credential(user, mechanism).await
    }

    async fn describe_config(
        &self,
        name: &str,
        resource: ConfigResource,
        keys: Option<&[String]>,
    ) -> Result<DescribeConfigsResult> {
        self.engine.describe_config(name, resource, keys).await
    }

    async fn list_groups(&self, states_filter: Option<&[String]>) -> Result<Vec<ListedGroup>> {
        self.engine.list_groups(states_filter).await
    }

    async fn delete_groups(
        &self,
        group_ids: Option<&[String]>,
    ) -> Result<Vec<DeletableGroupResult>> {
        self.engine.delete_groups(group_ids).await
    }

    async fn describe_groups(
        &self,
        group_ids: Option<&[String]>,
        include_authorized_operations: bool,
    ) -> Result<Vec<NamedGroupDetail>> {
        self.engine
            .describe_groups(group_ids, include_authorized_operations)
            .await
    }

    async fn describe_topic_partitions(
        &self,
        topics: Option<&[TopicId]>,
        partition_limit: i32,
        cursor: Option<Topition>,
    ) -> Result<Vec<DescribeTopicPartitionsResponseTopic>> {
        self.engine
            .describe_topic_partitions(topics, partition_limit, cursor)
            .await
    }

    async fn update_group(
        &self,
        group_id: &str,
        detail: GroupDetail,
        version: Option<Version>,
    ) -> Result<Version, UpdateError<GroupDetail>> {
        self.engine.update_group(group_id, detail, version).await
    }

    async fn init_producer(
        &self,
        transaction_id: Option<&str>,
        transaction_timeout_ms: i32,
        producer_id: Option<i64>,
        producer_epoch: Option<i16>,
    ) -> Result<ProducerIdResponse> {
        self.engine
            .init_producer(
                transaction_id,
                transaction_timeout_ms,
                producer_id,
                producer_epoch,
            )
            .await
    }

    async fn txn_add_offsets(
        &self,
        transaction_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<ErrorCode> {
        self.engine
            .txn_add_offsets(transaction_id, producer_id, producer_epoch, group_id)
            .await
    }

    async fn txn_add_partitions(
        &self,
        partitions: TxnAddPartitionsRequest,
    ) -> Result<TxnAddPartitionsResponse> {
        self.engine.txn_add_partitions(partitions).await
    }

    async fn txn_offset_commit(
        &self,
        offsets: TxnOffsetCommitRequest,
    ) -> Result<Vec<TxnOffsetCommitResponseTopic>> {
        self.engine.txn_offset_commit(offsets).await
    }

    async fn txn_end(
        &self,
        transaction_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        committed: bool,
    ) -> Result<ErrorCode> {
        self.engine
            .txn_end(transaction_id, producer_id, producer_epoch, committed)
            .await
    }

    async fn maintain(&self, now: SystemTime) -> Result<()> {
        self.engine.maintain(now).await
    }

    async fn cluster_id(&self) -> Result<String> {
        self.engine.cluster_id().await
    }

    async fn node(&self) -> Result<i32> {
        self.engine.node().await
    }

    async fn advertised_listener(&self) -> Result<Url> {
        self.engine.advertised_listener().await
    }

    async fn ping(&self) -> Result<()> {
        self.engine.ping().await
    }
}
