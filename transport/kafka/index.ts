/**
 * The Kafka wiring of the pipeline: collectors publish FlowRecords through KafkaFlowSink; processors
 * consume them in one of three roles (pipeline/kafka.ts, where the stages are wired). docs/pipeline.md explains the design,
 * docs/kafka.md the client and broker findings.
 */

export {
  kafkajsProducer,
  type ProduceClient,
  type ProduceClientFactory,
  type ProduceCompression,
  type ProducerLibrary,
  platformaticProducer,
} from './produce-client.js';
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
  PACK_CHARS,
  REQUEST_PARTITION_BYTES,
  requestParts,
} from './sink.js';
export { ensureTopics } from './topics.js';
export {
  decodeVerdict,
  decodeVerdicts,
  encodeVerdict,
  packVerdicts,
  VERDICT_PACK_SCHEMA_NAME,
  VERDICTS_PER_PACK,
  type VerdictMessage,
} from './verdict.js';
