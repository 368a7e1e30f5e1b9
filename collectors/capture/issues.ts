/**
 * Stable InputIssue codes of the capture readers. A code never changes meaning; docs/capture.md
 * lists them with example messages.
 */
export const CaptureIssueCode = {
  /** Fewer bytes than a file header, or an unknown magic number: nothing can be read. */
  UNKNOWN_FORMAT: 'CAPTURE_UNKNOWN_FORMAT',
  /** The input ended before the file header was complete. */
  TRUNCATED_FILE_HEADER: 'CAPTURE_TRUNCATED_FILE_HEADER',
  /** pcap file header with a version other than 2.x (x <= 4). The whole file is rejected. */
  PCAP_BAD_VERSION: 'PCAP_BAD_VERSION',
  /** The input ended inside a pcap record header or body. */
  PCAP_TRUNCATED_RECORD: 'PCAP_TRUNCATED_RECORD',
  /** caplen larger than the hard limit (256 KiB) or than the file snaplen allows: the header is garbage. */
  PCAP_BAD_CAPLEN: 'PCAP_BAD_CAPLEN',
  /** caplen > origlen: kept, wire length raised to caplen (warning). */
  PCAP_CAPLEN_GT_ORIGLEN: 'PCAP_CAPLEN_GT_ORIGLEN',
  /** caplen > file snaplen but within the hard limit: kept (warning). */
  PCAP_CAPLEN_GT_SNAPLEN: 'PCAP_CAPLEN_GT_SNAPLEN',
  /** Bytes skipped while searching for the next plausible record/block after corruption. */
  CAPTURE_RESYNC: 'CAPTURE_RESYNC',
  /** The input ended inside a pcapng block. */
  PCAPNG_TRUNCATED_BLOCK: 'PCAPNG_TRUNCATED_BLOCK',
  /** Block total length not a multiple of 4, below 12, above the limit, or the trailing copy differs. */
  PCAPNG_BAD_BLOCK_LENGTH: 'PCAPNG_BAD_BLOCK_LENGTH',
  /** Section header block with an unknown byte-order magic or major version. */
  PCAPNG_BAD_SECTION_HEADER: 'PCAPNG_BAD_SECTION_HEADER',
  /** An option runs past the end of its block. */
  PCAPNG_BAD_OPTION: 'PCAPNG_BAD_OPTION',
  /** A packet block names an interface that no IDB of the section declared. */
  PCAPNG_UNKNOWN_INTERFACE: 'PCAPNG_UNKNOWN_INTERFACE',
  /** A packet block whose captured length does not fit its block or exceeds the limit. */
  PCAPNG_BAD_PACKET_LENGTH: 'PCAPNG_BAD_PACKET_LENGTH',
  /** A block before the first section header (the file does not start with an SHB). */
  PCAPNG_BLOCK_OUTSIDE_SECTION: 'PCAPNG_BLOCK_OUTSIDE_SECTION',
  /** A pcapng block too short for its fixed fields (IDB, EPB, SPB...). */
  PCAPNG_BAD_BLOCK_BODY: 'PCAPNG_BAD_BLOCK_BODY',
} as const;

export type CaptureIssueCode = (typeof CaptureIssueCode)[keyof typeof CaptureIssueCode];
