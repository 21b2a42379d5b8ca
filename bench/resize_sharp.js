// One process, one core: time sharp on one input and operation, as resize_worker.py does ours.
// Usage: node resize_sharp.js SOURCE OP FMT RUNS OUT QUALITY EFFORT [STRATEGY]
// OP: fit (800 wide), cover-focal (800x800 around a focal point), smart (800x800, position
// STRATEGY: entropy or attention). Writes the last output to OUT; prints median ms and bytes.
const fs = require('fs');
const sharp = require('sharp');
sharp.concurrency(1);
const [sourcePath, op, format, runs, out, quality, effort, strategy] = process.argv.slice(2);
const source = fs.readFileSync(sourcePath);
const FOCAL = [0.25, 0.7];

async function pipeline() {
  let image = sharp(source).rotate();
  if (op === 'fit') {
    image = image.resize({ width: 800, withoutEnlargement: true });
  } else if (op === 'cover-focal') {
    // Resize to cover first (JPEG shrink-on-load still applies), then cut the box around
    // the focal point: sharp's fastest way, as it has no focal option.
    const { width, height } = await sharp(source).rotate().metadata();
    const scale = Math.max(800 / width, 800 / height);
    const [w, h] = [Math.round(width * scale), Math.round(height * scale)];
    const clamp = (value, max) => Math.max(0, Math.min(Math.round(value), max));
    const left = clamp(FOCAL[0] * w - 400, w - 800);
    const top = clamp(FOCAL[1] * h - 400, h - 800);
    image = image.resize(w, h).extract({ left, top, width: 800, height: 800 });
  } else if (op === 'smart') {
    image = image.resize(800, 800, { fit: 'cover', position: sharp.strategy[strategy] });
  } else {
    throw new Error(`unknown op ${op}`);
  }
  const options = { quality: +quality };
  if (format === 'avif' || format === 'webp') options.effort = +effort;
  // sharp's AVIF default is 4:4:4; Pillow's (ours) is 4:2:0: compare the same encoding.
  if (format === 'avif') options.chromaSubsampling = '4:2:0';
  return image.toFormat(format, options).toBuffer();
}

(async () => {
  const times = [];
  let output;
  for (let i = 0; i < +runs; i++) {
    const started = process.hrtime.bigint();
    output = await pipeline();
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  fs.writeFileSync(out, output);
  times.sort((a, b) => a - b);
  console.log(times[Math.floor(times.length / 2)].toFixed(1) + ' ' + output.length);
})().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
