/**
 * The conntrack event listener with reliable delivery. `conntrack -E` loses events when its netlink
 * buffer overruns (ENOBUFS): a short connection whose NEW and DESTROY both fall in the gap leaves no
 * trace, and no later table dump can find it. A listener that sets NETLINK_BROADCAST_ERROR on its
 * socket makes the kernel keep a conntrack whose DESTROY it could not deliver (the dying list) and
 * send that DESTROY again until it fits, with the events it missed (the way conntrackd's
 * NetlinkEventsReliable works). So every connection ends in a DESTROY that reaches the collector;
 * only NEW and UPDATE events can still be lost, and the ENOBUFS catch-up dump covers those.
 *
 * The listener is a short Python program over libnetfilter_conntrack (installed with conntrack, the
 * library conntrack itself prints with): its lines are `conntrack -E -o timestamp,extended,id`'s,
 * byte for byte, so one parser reads both (test/netns/conntrack-reliable.test.ts checks it against
 * conntrack on the same traffic). It runs as `python3 -c`, so nothing but this module ships it.
 */
/** What the listener prints on standard error once it is subscribed. */
export const RELIABLE_READY = 'netpol-audit conntrack listener: subscribed';

export const RELIABLE_EVENTS_PY = String.raw`
import ctypes, errno, os, sys, time
READY = '${RELIABLE_READY}'
args = sys.argv[1:]
size, mask = 8 << 20, 7
while args:
    flag, value = args[0], args[1]
    args = args[2:]
    if flag == '-b':
        size = int(value)
    elif flag == '-e':
        mask = 0
        for name in value.split(','):
            mask |= {'NEW': 1, 'UPDATE': 2, 'DESTROY': 4}[name]
try:
    nfct = ctypes.CDLL('libnetfilter_conntrack.so.3', use_errno=True)
    nfnl = ctypes.CDLL('libnfnetlink.so.0', use_errno=True)
except OSError as e:
    sys.stderr.write('cannot load libnetfilter_conntrack (install conntrack): %s\n' % e)
    sys.exit(3)
libc = ctypes.CDLL(None, use_errno=True)
P = ctypes.c_void_p
CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, P, P)
nfct.nfct_open.restype = P
nfct.nfct_open.argtypes = [ctypes.c_uint8, ctypes.c_uint]
nfct.nfct_fd.argtypes = [P]
nfct.nfct_nfnlh.restype = P
nfct.nfct_nfnlh.argtypes = [P]
nfct.nfct_callback_register.argtypes = [P, ctypes.c_int, CALLBACK, P]
nfct.nfct_snprintf.argtypes = [ctypes.c_char_p, ctypes.c_uint, P, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
nfct.nfct_catch.argtypes = [P]
nfnl.nfnl_rcvbufsiz.restype = ctypes.c_uint
nfnl.nfnl_rcvbufsiz.argtypes = [P, ctypes.c_uint]
handle = nfct.nfct_open(1, mask)  # CONNTRACK, the event groups
if not handle:
    sys.stderr.write('cannot open a conntrack netlink socket: %s\n' % os.strerror(ctypes.get_errno()))
    sys.exit(1)
on = ctypes.c_int(1)
# SOL_NETLINK, NETLINK_BROADCAST_ERROR: the kernel learns of a failed delivery and retries DESTROY.
if libc.setsockopt(nfct.nfct_fd(handle), 270, 4, ctypes.byref(on), 4) != 0:
    sys.stderr.write('cannot ask for reliable events (NETLINK_BROADCAST_ERROR): %s\n' % os.strerror(ctypes.get_errno()))
    sys.exit(1)
nfnl.nfnl_rcvbufsiz(nfct.nfct_nfnlh(handle), size)
buf = ctypes.create_string_buffer(4096)
out = sys.stdout
def on_event(kind, ct, data):
    # NFCT_O_DEFAULT with NFCT_OF_SHOW_LAYER3 | NFCT_OF_ID: what conntrack -o extended,id prints.
    nfct.nfct_snprintf(buf, 4096, ct, kind, 0, 1 | 4)
    out.write('[%.6f]\t%s\n' % (time.time(), buf.value.decode('ascii', 'replace')))
    out.flush()
    return 1  # NFCT_CB_CONTINUE
callback = CALLBACK(on_event)
nfct.nfct_callback_register(handle, 7, callback, None)
# Subscribed: the collector lists the table only now, so no connection falls between the two.
sys.stderr.write('%s\n' % READY)
sys.stderr.flush()
while True:
    if nfct.nfct_catch(handle) == -1:
        e = ctypes.get_errno()
        if e == errno.ENOBUFS:
            # Words of conntrack's own warning: the collector reacts to them the same way.
            sys.stderr.write('WARNING: We have hit ENOBUFS! We are losing events (NEW or UPDATE; DESTROY is sent again).\n')
            sys.stderr.flush()
        elif e != errno.EINTR:
            sys.stderr.write('conntrack events: %s\n' % os.strerror(e))
            sys.exit(1)
`;

/** How the collector hears of conntrack events. */
export type ConntrackEventSource = 'reliable' | 'conntrack';

export const CONNTRACK_EVENT_SOURCES: readonly ConntrackEventSource[] = ['reliable', 'conntrack'];

export const DEFAULT_CONNTRACK_EVENT_SOURCE: ConntrackEventSource = 'reliable';

/** The argv of the reliable listener for `python3` (buffer bytes, event names as conntrack's -e). */
export function reliableEventsArgs(bufferBytes: number, events: string): string[] {
  return ['-c', RELIABLE_EVENTS_PY, '-b', String(bufferBytes), '-e', events];
}
