// kafkajs against strait broker: create a topic, produce keyed records with
// headers, read them back with a consumer group in order per key, commit,
// and check the group's committed offsets equal the partitions' ends.
// SEEDS (host:port,...) names the brokers. Exits non-zero on any mismatch.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const seeds = (process.env.SEEDS || '').split(',').filter(Boolean);
if (seeds.length === 0) {
  console.error('kafkajs: SEEDS is empty');
  process.exit(2);
}
const topic = 'kafkajs';
const groupId = 'kafkajs-group';
const n = 1000;

const kafka = new Kafka({ clientId: 'strait-conformance-kafkajs', brokers: seeds, logLevel: logLevel.WARN });

function fail(msg) {
  throw new Error(`mismatch: ${msg}`);
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  if (!(await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true }))) {
    fail(`topic ${topic} already exists`);
  }

  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < n; i += 100) {
    const messages = [];
    for (let j = i; j < i + 100; j++) {
      messages.push({ key: `key-${j % 10}`, value: String(j), headers: { origin: 'kafkajs', seq: String(j) } });
    }
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const next = new Map();
  const high = new Map(); // partition -> offset after the last record read
  let got = 0;
  let failure = null;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      try {
        const key = message.key.toString();
        const seq = Number(message.value.toString());
        if (!Number.isInteger(seq) || key !== `key-${seq % 10}`) {
          fail(`partition ${partition} offset ${message.offset}: key ${key} value ${message.value}`);
        }
        const want = next.has(key) ? next.get(key) : seq % 10;
        if (seq === want - 10) {
          return; // redelivered after a rebalance; already counted
        }
        if (seq !== want) {
          fail(`key ${key}: got sequence ${seq}, want ${want}`);
        }
        const h = message.headers;
        if (String(h.origin) !== 'kafkajs' || String(h.seq) !== String(seq)) {
          fail(`record ${seq} headers ${JSON.stringify(h)}`);
        }
        next.set(key, seq + 10);
        const end = BigInt(message.offset) + 1n;
        high.set(partition, end);
        got++;
        if (got % 100 === 0 || got === n) {
          const offsets = [...high].map(([p, o]) => ({ topic, partition: p, offset: o.toString() }));
          await consumer.commitOffsets(offsets);
        }
        if (got === n) {
          finish();
        }
      } catch (err) {
        failure = err;
        finish();
      }
    },
  });
  const timeout = setTimeout(() => {
    failure = failure || new Error(`consumed ${got} of ${n} records in 60s`);
    finish();
  }, 60000);
  await finished;
  clearTimeout(timeout);
  await consumer.disconnect();
  if (failure) {
    throw failure;
  }

  const ends = await admin.fetchTopicOffsets(topic);
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  for (const { partition, high: end } of ends) {
    const c = committed.partitions.find((p) => p.partition === partition);
    if (!c || c.offset !== end) {
      fail(`partition ${partition} committed ${c && c.offset}, want ${end}`);
    }
    if (String(high.get(partition) || 0n) !== end) {
      fail(`partition ${partition} read up to ${high.get(partition)}, end is ${end}`);
    }
  }
  await admin.disconnect();
  console.log(`kafkajs: ${n} records produced, consumed in order and committed`);
}

main().catch((err) => {
  console.error('kafkajs:', err);
  process.exit(1);
});
