// A small load generator for bench/authcode_bench.py: POST each form body of a JSON array once,
// with CONCURRENCY requests in flight over keep-alive connections (Node's fetch), and print
// {"ok","bad","seconds","first_failure"}. autocannon sends one body repeatedly; codes and refresh
// tokens are single-use, so each request needs its own body.
// Usage: node post_bodies.mjs URL BODIES_JSON_FILE CONCURRENCY
import { readFileSync } from 'node:fs';

const [url, file, concurrencyArg] = process.argv.slice(2);
const bodies = JSON.parse(readFileSync(file, 'utf8'));
const concurrency = Number(concurrencyArg);

let next = 0;
let ok = 0;
let bad = 0;
let firstFailure = null;

async function worker() {
  while (next < bodies.length) {
    const body = bodies[next];
    next += 1;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    const text = await response.text();
    if (response.status === 200 && text.includes('"id_token"')) {
      ok += 1;
    } else {
      bad += 1;
      firstFailure ??= `${response.status} ${text.slice(0, 200)}`;
    }
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ ok, bad, seconds, first_failure: firstFailure }));
