/**
 * Address keys: an address compared as a number. Text that is a canonical dotted quad (what the
 * decoder writes) is its 32-bit value; any other text gets V4_LIMIT + a small id while a flow uses
 * it. Two addresses have the same key exactly when their texts are equal.
 */
export const V4_LIMIT = 4294967296;

/** No key: the address is not a dotted quad and no flow uses it. */
const NO_KEY = -1;

/** The value of a canonical dotted quad ("10.0.0.1": no leading zeros, octets 0-255), else -1. */
export function parseIpv4(s: string): number {
  const n = s.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

interface AddressSlot {
  id: number;
  /** Flow endpoints in the table with this address. */
  refs: number;
}

/** The ids of addresses that are not dotted quads (IPv6), while flows use them. */
export class AddressKeys {
  private readonly addresses = new Map<string, AddressSlot>();
  private readonly freeIds: number[] = [];
  private nextId = 0;

  /** The key of an address if it has one (a dotted quad, or text some flow uses), else -1. */
  key(s: string): number {
    const v = parseIpv4(s);
    if (v >= 0) return v;
    const slot = this.addresses.get(s);
    return slot === undefined ? NO_KEY : V4_LIMIT + slot.id;
  }

  /** The key of an address for a flow endpoint being added (an id is handed out when needed). */
  hold(s: string): number {
    const v = parseIpv4(s);
    if (v >= 0) return v;
    let slot = this.addresses.get(s);
    if (slot === undefined) {
      const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.nextId++;
      slot = { id, refs: 0 };
      this.addresses.set(s, slot);
    }
    slot.refs++;
    return V4_LIMIT + slot.id;
  }

  /** Lets go of an endpoint's address (`key` as hold gave it). */
  drop(s: string, key: number): void {
    if (key < V4_LIMIT) return;
    const slot = this.addresses.get(s)!;
    if (--slot.refs === 0) {
      this.addresses.delete(s);
      this.freeIds.push(slot.id);
    }
  }
}
