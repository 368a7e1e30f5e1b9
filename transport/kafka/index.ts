/**
 * The Kafka wiring of the pipeline: collectors publish FlowRecords through KafkaFlowSink; processors
 * consume them in one of three roles (PipelineRunner). docs/pipeline.md explains the design,
 * docs/kafka.md the client and broker findings.
 */
export { PipelineRunner, type Role, type RunnerOptions, type RunnerStats, runPipeline } from './runner.js';
export {
  createKafka,
  DEFAULT_TOPIC_PREFIX,
  type KafkaSettings,
  kafkaSettings,
  parseBrokers,
  type TopicNames,
  topicNames,
} from './settings.js';
export {
  HEADER_ORIGIN,
  HEADER_SEQ,
  KafkaFlowSink,
  type KafkaFlowSinkOptions,
  type KafkaSinkStats,
} from './sink.js';
export { ensureTopics } from './topics.js';
export { decodeVerdict, encodeVerdict, type VerdictMessage } from './verdict.js';
