import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BenchUsageError, DEFAULT_OPTIONS, formatTable, median, parseBenchArgs, summarize } from './options.js';

describe('registry bench options and table', () => {
  it('parses flags, with defaults for the rest', () => {
    assert.deepEqual(parseBenchArgs([]), DEFAULT_OPTIONS);
    const o = parseBenchArgs(['--runs', '5', '--big', '--targets=distribution', '--no-skopeo', '--blob-mib', '64']);
    assert.equal(o.runs, 5);
    assert.equal(o.big, true);
    assert.deepEqual(o.targets, ['distribution']);
    assert.equal(o.skopeo, false);
    assert.equal(o.blobMiB, 64);
    assert.equal(o.smallCount, 2000);
  });

  it('rejects bad flags', () => {
    assert.throws(() => parseBenchArgs(['--runs', '0']), BenchUsageError);
    assert.throws(() => parseBenchArgs(['--runs']), BenchUsageError);
    assert.throws(() => parseBenchArgs(['--targets', 'zot']), BenchUsageError);
    assert.throws(() => parseBenchArgs(['--fast']), BenchUsageError);
  });

  it('takes medians and ratios, and formats the table', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
    assert.equal(median([]), undefined);
    const s = summarize({
      distribution: { pushMiBs: [150, 140, 160], peakRssMiB: [40] },
      ukc: { pushMiBs: [300, 280, 320], peakRssMiB: [80] },
    });
    assert.equal(s.medians.ukc?.pushMiBs, 300);
    assert.equal(s.ratios.pushMiBs, 2);
    assert.equal(s.ratios.pullMiBs, undefined);
    const table = formatTable(s, 3).split('\n');
    assert.equal(table[0], '| measurement (median of 3) | distribution 2.8 | ukc | ukc / distribution |');
    assert.equal(table[2], '| monolithic push (POST + PUT) (MiB/s) | 150.0 | 300.0 | 2.00 |');
    assert.equal(table[3], '| server peak RSS (VmHWM) over the run (MiB) | 40.0 | 80.0 | 2.00 |');
    assert.equal(table.length, 4, 'metrics nobody measured are left out');
  });
});
