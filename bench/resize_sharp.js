// One process, one core: time sharp on one input. Prints the median ms.
const fs = require('fs');
const sharp = require('sharp');
sharp.concurrency(1);
const [source, format, runs] = [fs.readFileSync(process.argv[2]), process.argv[3], +process.argv[4]];
(async () => {
  const times = [];
  let size = 0;
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    const pipeline = sharp(source).rotate().resize({ width: 800, withoutEnlargement: true });
    const out = format === 'webp' ? await pipeline.webp({ quality: 80 }).toBuffer()
                                  : await pipeline.avif({ quality: 55 }).toBuffer();
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    size = out.length;
  }
  times.sort((a, b) => a - b);
  const peak = process.resourceUsage().maxRSS / 1024;
  console.log(times[Math.floor(times.length / 2)].toFixed(1) + ' ' + size + ' ' + peak.toFixed(1));
})();
