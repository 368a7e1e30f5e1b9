/**
 * The Kafka wiring of the pipeline: collectors publish FlowRecords through KafkaFlowSink; processors
 * consume them in one of three roles (pipeline/kafka.ts, where the stages are wired). docs/pipeline.md explains the design,
 * docs/kafka.md the client and broker findings.
 */
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
  DEFAULT_WIRE_FORMAT,
  HEADER_ORIGIN,
  HEADER_SEQ,
  KafkaFlowSink,
  type KafkaFlowSinkOptions,
  type KafkaSinkStats,
  type ProduceClient,
  type ProduceClientFactory,
} from './sink.js';
export { ensureTopics } from './topics.js';
export { decodeVerdict, encodeVerdict, type VerdictMessage } from './verdict.js';
