// The lab's "container": one per pod, run inside the pod's network namespace with
// `ip netns exec NS node agent.mjs SPEC`. Plain JavaScript (no loader, quick to start).
//   SPEC = {"tcp":[8080],"udp":[53]}  ports to serve: TCP echoes, UDP answers every datagram
// It prints {"ready":true} once listening, then takes one JSON command per line on standard input
// and answers one JSON line per command on standard output:
//   {"id":1,"op":"tcp","host":"10.244.2.20","port":9000,"data":"x","timeoutMs":1500}
//       -> {"id":1,"result":"ok"|"refused"|"timeout"|"error","got":"x","port":LOCAL_PORT}
//   {"id":2,"op":"udp","host":"10.244.1.2","port":53,"data":"q","timeoutMs":1000}
//       -> {"id":2,"result":"ok"|"timeout"|"refused","port":LOCAL_PORT}
//   {"id":3,"op":"hold","host":"10.244.2.30","port":5432}   a TCP connection left open
//       -> {"id":3,"result":"ok","handle":"h1","port":LOCAL_PORT}
//   {"id":4,"op":"release","handle":"h1"}                   closes it (FIN, then the echo's FIN)
//       -> {"id":4,"result":"ok"}
import dgram from 'node:dgram';
import net from 'node:net';
import readline from 'node:readline';

const spec = JSON.parse(process.argv[2] ?? '{}');
const reply = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

let listening = 0;
const wanted = (spec.tcp ?? []).length + (spec.udp ?? []).length;
const ready = () => {
  listening++;
  if (listening === wanted) reply({ ready: true });
};
for (const port of spec.tcp ?? []) {
  const server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    sock.pipe(sock);
  });
  server.listen(port, '0.0.0.0', ready);
}
for (const port of spec.udp ?? []) {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  sock.bind(port, '0.0.0.0', ready);
}
if (wanted === 0) reply({ ready: true });

const held = new Map();
let handles = 0;

/**
 * A timeout, decided after the socket events already waiting: a loaded machine can stall this
 * process past the deadline, and timers run before the poll phase, so an answer sitting in the
 * socket would lose to the timer. setImmediate runs after that phase.
 */
function late(fn) {
  setImmediate(fn);
}

function tcp(cmd) {
  const sock = net.connect({ host: cmd.host, port: cmd.port });
  const got = [];
  let done = false;
  let local = 0;
  const finish = (result) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    reply({ id: cmd.id, result, got: Buffer.concat(got).toString(), port: local });
  };
  // Unanswered (dropped by the stand-in CNI): give up; closing a socket still in SYN_SENT sends nothing.
  const timer = setTimeout(
    () =>
      late(() => {
        local ||= sock.localPort ?? 0;
        sock.destroy();
        finish('timeout');
      }),
    cmd.timeoutMs ?? 1500,
  );
  // net.connect calls connect(2) on the next tick for an address; the tick after it, the socket has
  // its port and nothing (not even a refusing RST) has been read yet. A refused socket has no port
  // to ask for once its error is out.
  process.nextTick(() => {
    local ||= sock.localPort ?? 0;
  });
  sock.on('connect', () => {
    local = sock.localPort;
    sock.end(cmd.data ?? 'hello');
  });
  sock.on('data', (d) => got.push(d));
  sock.on('close', () => finish('ok'));
  sock.on('error', (err) => {
    local ||= sock.localPort ?? 0;
    finish(err.code === 'ECONNREFUSED' ? 'refused' : 'error');
  });
}

function udp(cmd) {
  const sock = dgram.createSocket('udp4');
  let done = false;
  const finish = (result) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    let port = 0;
    try {
      port = sock.address().port;
    } catch {}
    sock.close();
    reply({ id: cmd.id, result, port });
  };
  const timer = setTimeout(() => late(() => finish('timeout')), cmd.timeoutMs ?? 1000);
  sock.on('message', () => finish('ok'));
  // An ICMP port unreachable reaches a connected UDP socket as ECONNREFUSED.
  sock.on('error', (err) => finish(err.code === 'ECONNREFUSED' ? 'refused' : 'error'));
  sock.connect(cmd.port, cmd.host, () => sock.send(cmd.data ?? 'query'));
}

function hold(cmd) {
  const sock = net.connect({ host: cmd.host, port: cmd.port });
  sock.on('connect', () => {
    const handle = `h${++handles}`;
    held.set(handle, sock);
    sock.write(cmd.data ?? 'held');
    reply({ id: cmd.id, result: 'ok', handle, port: sock.localPort });
  });
  sock.on('error', (err) => reply({ id: cmd.id, result: 'error', error: err.code }));
}

function release(cmd) {
  const sock = held.get(cmd.handle);
  if (!sock) return reply({ id: cmd.id, result: 'error', error: 'no such handle' });
  held.delete(cmd.handle);
  sock.on('close', () => reply({ id: cmd.id, result: 'ok' }));
  sock.end();
  sock.resume();
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === '') return;
  const cmd = JSON.parse(line);
  if (cmd.op === 'tcp') tcp(cmd);
  else if (cmd.op === 'udp') udp(cmd);
  else if (cmd.op === 'hold') hold(cmd);
  else if (cmd.op === 'release') release(cmd);
  else reply({ id: cmd.id, result: 'error', error: `unknown op ${cmd.op}` });
});
process.stdin.on('end', () => process.exit(0));
