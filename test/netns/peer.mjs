// Traffic ends for the network-namespace test, run inside a pod namespace with
// `ip netns exec NS node peer.mjs MODE ...`. Plain JavaScript: no loader, quick to start.
//   tcp-echo-server PORT      echo every TCP connection back, print "ready"
//   udp-echo-server PORT [count]  answer every datagram with its own bytes, print "ready" (and, with
//                             count, "answered" for every answer the kernel accepted)
//   tcp-client HOST PORT MSG  send MSG, half-close, print what came back
//   udp-client HOST PORT MSG  send MSG, print the answer (or "timeout" after 2 s)
//   tcp-refused HOST PORT     connect, expect ECONNREFUSED, print the error code
//   udp-burst HOST PORT N     send N datagrams from one socket as fast as it can, print how many answers came
//   tcp-chat HOST PORT N MS   one connection: a line every MS ms, N times, then close; print the bytes echoed
//   tcp-burst HOST PORT N     N short connections, 50 at a time: print "<answered> <refused>"
import dgram from 'node:dgram';
import net from 'node:net';

const [mode, a, b, c] = process.argv.slice(2);
const done = (text, code = 0) => {
  process.stdout.write(`${text}\n`, () => process.exit(code));
};

switch (mode) {
  case 'tcp-echo-server': {
    const server = net.createServer((sock) => sock.pipe(sock));
    server.listen(Number(a), '0.0.0.0', () => process.stdout.write('ready\n'));
    break;
  }
  case 'udp-echo-server': {
    const sock = dgram.createSocket(a.includes(':') ? 'udp6' : 'udp4');
    const count = b === 'count';
    sock.on('message', (msg, rinfo) =>
      sock.send(msg, rinfo.port, rinfo.address, (err) => {
        if (count && !err) process.stdout.write('answered\n');
      }),
    );
    sock.bind(Number(a), () => process.stdout.write('ready\n'));
    break;
  }
  case 'tcp-client': {
    const sock = net.connect({ host: a, port: Number(b) }, () => sock.end(c));
    const got = [];
    sock.on('data', (d) => got.push(d));
    sock.on('close', () => done(Buffer.concat(got).toString()));
    sock.on('error', (err) => done(`error ${err.code}`, 1));
    break;
  }
  case 'udp-client': {
    const sock = dgram.createSocket(a.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => done('timeout', 1), 2000);
    sock.on('message', (msg) => {
      clearTimeout(timer);
      done(msg.toString());
    });
    sock.on('error', (err) => {
      // A UDP socket learns of an ICMP port unreachable as ECONNREFUSED on a later call.
      clearTimeout(timer);
      done(`error ${err.code}`, 1);
    });
    sock.send(c, Number(b), a);
    break;
  }
  case 'tcp-refused': {
    const sock = net.connect({ host: a, port: Number(b) }, () => done('connected', 1));
    sock.on('error', (err) => done(err.code));
    break;
  }
  case 'udp-burst': {
    const sock = dgram.createSocket('udp4');
    const total = Number(c);
    let answers = 0;
    const finish = () => done(String(answers));
    let timer = setTimeout(finish, 2000);
    sock.on('message', () => {
      answers++;
      clearTimeout(timer);
      timer = setTimeout(finish, answers === total ? 0 : 1000);
    });
    sock.connect(Number(b), a, () => {
      for (let i = 0; i < total; i++) sock.send(`burst-${i}`);
    });
    break;
  }
  case 'tcp-chat': {
    const [, , , , ms] = process.argv.slice(2);
    let got = 0;
    const sock = net.connect({ host: a, port: Number(b) }, () => {
      let sent = 0;
      const timer = setInterval(() => {
        sock.write(`line ${sent}\n`);
        if (++sent === Number(c)) {
          clearInterval(timer);
          sock.end();
        }
      }, Number(ms));
    });
    sock.on('data', (d) => {
      got += d.length;
    });
    sock.on('close', () => done(String(got)));
    sock.on('error', (err) => done(`error ${err.code}`, 1));
    break;
  }
  case 'tcp-burst': {
    const total = Number(c);
    let started = 0;
    let answered = 0;
    let refused = 0;
    const one = () =>
      new Promise((resolve) => {
        const sock = net.connect({ host: a, port: Number(b) }, () => {
          answered++;
          sock.end('x');
        });
        sock.on('data', () => undefined);
        sock.on('close', resolve);
        sock.on('error', (err) => {
          if (err.code === 'ECONNREFUSED') refused++;
          resolve();
        });
      });
    const lane = async () => {
      while (started < total) {
        started++;
        await one();
      }
    };
    Promise.all(Array.from({ length: 50 }, lane)).then(() => done(`${answered} ${refused}`));
    break;
  }
  default:
    done(`unknown mode ${mode}`, 2);
}
