/**
 * One packet as a capture file holds it, before any protocol decoding. A new object per record, but
 * `data` is a view (a plain Uint8Array) into the reader's chunk and is valid only during the onRecord
 * callback (a file's chunks are read into one reused buffer), so a consumer that keeps bytes must copy
 * them.
 */
export interface CaptureRecord {
  /** Unix epoch milliseconds (fractional for sub-millisecond resolution), from the file. */
  ts: number;
  /** LINKTYPE_* value of the interface that captured the packet. */
  linkType: number;
  /** Interface index within the file (pcapng IDB index across sections, 0 for pcap). */
  iface: number;
  /** Length of the packet on the wire. */
  wireLen: number;
  /** Captured bytes (may be shorter than wireLen: snaplen). */
  data: Uint8Array;
  /** 0-based number of this packet record in the input. */
  record: number;
  /** Byte offset of the record (block) in the input. */
  offset: number;
  /**
   * Set when the format stores no timestamp for this packet (pcapng Simple Packet Block): `ts` is then
   * the previous packet's timestamp in the input (0 if none).
   */
  tsMissing?: boolean;
}
