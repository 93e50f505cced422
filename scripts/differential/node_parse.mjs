// What Node's HTTP server (llhttp, as node:http configures it by default) understands of
// raw byte streams: a node:http server on loopback is sent each stream over its own
// connection, then the client's half-close, and records the requests it emits and whether
// it rejected the stream. Reads a JSON array of hex streams on stdin, writes a JSON array
// of results in the shape of common/examples/framing.rs (no `end` offsets: node does not
// say where a request ended; the requests after it show whether it ended in the same place).
import http from "node:http";
import net from "node:net";

// A stream that never closes its connection is a hang, not a result.
const HANG_GUARD_MS = 5000;

function serve() {
  let current = null; // the record of the stream being parsed: one connection at a time
  const server = http.createServer((req, res) => {
    const record = current;
    const message = {
      method: req.method,
      target: req.url,
      version: req.httpVersion,
      headers: [],
      body: [],
    };
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      message.headers.push([req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]]);
    }
    record.pending += 1;
    req.on("data", (chunk) => message.body.push(chunk));
    req.on("end", () => {
      record.pending -= 1;
      record.messages.push({ ...message, body: Buffer.concat(message.body).toString("hex") });
      res.writeHead(200, { "content-length": "0" });
      res.end();
    });
  });
  server.on("clientError", (err, socket) => {
    current.error = err.code || String(err);
    socket.destroy();
  });
  return { server, setCurrent: (r) => (current = r) };
}

function parse(port, setCurrent, hex) {
  const record = { messages: [], error: null, pending: 0, answers: [] };
  setCurrent(record);
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.end(Buffer.from(hex, "hex"));
    });
    const guard = setTimeout(() => socket.destroy(), HANG_GUARD_MS);
    socket.on("data", (bytes) => record.answers.push(bytes));
    socket.on("error", () => {});
    // The connection closes once the server has answered what it read, or rejected it.
    socket.on("close", () => {
      clearTimeout(guard);
      resolve(record);
    });
  });
}

function outcome(record) {
  // Node refuses some requests itself (HTTP/1.1 without Host) with a 400 and no event, and
  // may go on to read what follows: only the requests answered before the refusal count.
  const answers = Buffer.concat(record.answers).toString("latin1");
  const refused = answers.match(/HTTP\/1\.1 ([45]\d\d)/);
  if (refused) {
    const before = answers.slice(0, refused.index).match(/HTTP\/1\.1 200/g) || [];
    record.messages.length = Math.min(record.messages.length, before.length);
    record.error ||= `answered ${refused[1]}`;
    return "rejected";
  }
  // Bytes after a request that closes the connection: node stops there, as the others do.
  if (record.error === "HPE_CLOSED_CONNECTION") return "closed";
  if (record.error && record.error !== "HPE_INVALID_EOF_STATE") return "rejected";
  // A half-close in the middle of a request is HPE_INVALID_EOF_STATE: incomplete, not bad.
  if (record.error || record.pending > 0) return "incomplete";
  const last = record.messages.at(-1);
  const closes = (m) => {
    const connection = m.headers.filter(([n]) => n === "connection").map(([, v]) => v.toLowerCase());
    if (connection.some((v) => v.split(",").map((t) => t.trim()).includes("close"))) return true;
    return m.version === "1.0" && !connection.some((v) => v.includes("keep-alive"));
  };
  return last && closes(last) ? "closed" : "end";
}

const input = JSON.parse(await new Response(process.stdin).text());
const { server, setCurrent } = serve();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const results = [];
for (const hex of input) {
  const record = await parse(server.address().port, setCurrent, hex);
  results.push({ messages: record.messages, outcome: outcome(record), detail: record.error });
}
server.close();
process.stdout.write(JSON.stringify(results));
