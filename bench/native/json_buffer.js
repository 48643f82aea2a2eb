// Allocation-heavy Node workload for the overhead benchmark: JSON round trips, Buffers, string building.
const rounds = Number(process.argv[2] || 200);
let total = 0;
for (let r = 0; r < rounds; r++) {
  const items = [];
  for (let i = 0; i < 200; i++) items.push({ id: i, name: 'item-' + i, tags: ['a', 'b', String(r)], v: Math.sqrt(i) });
  const text = JSON.stringify(items);
  total += JSON.parse(text).length;
  for (let i = 0; i < 50; i++) {
    const b = Buffer.from(text.slice(0, 1000 + i * 10));
    total += Buffer.concat([b, Buffer.alloc(8192 + i)]).length;
  }
}
console.log(total);
