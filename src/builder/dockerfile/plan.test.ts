import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from './parser.js';
import { parseGoDuration, parseRunMount, planBuild, resolveStages, type CopyStep, type ImageConfig, type PlanOptions, type ResolvedStage, type RunStep } from './plan.js';

const BASES: Record<string, ImageConfig> = {
  'debian:12': { Env: ['PATH=/usr/bin:/bin', 'LANG=C'], Cmd: ['bash'], Labels: { vendor: 'debian', keep: 'yes' }, WorkingDir: '' },
  'python:3.12': { Env: ['PATH=/usr/local/bin:/usr/bin', 'PYTHON_VERSION=3.12.1'], Cmd: ['python3'] },
  'onbuild:1': { OnBuild: ['RUN echo hi'] },
};

function build(text: string, options: PlanOptions = {}) {
  const plan = planBuild(parseDockerfile(text, 'Dockerfile'), options);
  const stages = resolveStages(plan, (ref) => {
    const c = BASES[ref];
    if (!c) throw new Error(`test has no base ${ref}`);
    return c;
  });
  return { plan, stages, last: stages[stages.length - 1] as ResolvedStage };
}

const runs = (s: ResolvedStage): RunStep[] => s.steps.filter((x): x is RunStep => x.kind === 'run');
const copies = (s: ResolvedStage): CopyStep[] => s.steps.filter((x): x is CopyStep => x.kind === 'copy');
const argv = (r: RunStep | undefined): string[] => (r?.exec.kind === 'argv' ? r.exec.argv : []);

test('rule: ARG before the first FROM is global and usable only in FROM lines', () => {
  const { plan, last } = build('ARG TAG=12\nARG IMG=debian\nFROM ${IMG}:$TAG\nLABEL tag=x$TAG\nWORKDIR /w$TAG\n');
  assert.deepEqual(plan.imageRefs, ['debian:12']);
  assert.equal(last.config.Labels?.tag, 'x', 'the global is not visible inside the stage');
  assert.equal(last.config.WorkingDir, '/w');
  // Build args override global defaults.
  assert.deepEqual(build('ARG TAG=11\nFROM debian:$TAG\n', { buildArgs: { TAG: '12' } }).plan.imageRefs, ['debian:12']);
  // Platform args are automatic in FROM.
  assert.deepEqual(build('FROM python:3.12\n', {}).plan.imageRefs, ['python:3.12']);
  assert.throws(() => build('RUN x\nFROM scratch\n'), /Dockerfile:1 RUN: only ARG may come before the first FROM/);
});

test('rule: ARG NAME redeclared inside a stage takes the global value', () => {
  const { last } = build('ARG V=1.0\nFROM debian:12\nARG V\nLABEL v=$V\nARG TARGETARCH\nENV A=$TARGETARCH\n');
  assert.equal(last.config.Labels?.v, '1.0');
  assert.ok(last.config.Env?.includes('A=amd64'), 'a redeclared platform arg has its automatic value');
});

test('rule: stage ARGs reach RUN as environment but are not kept in the image config', () => {
  const { last } = build('FROM debian:12\nARG MODE=fast\nARG UNSET\nRUN make $MODE\n');
  const run = runs(last)[0];
  assert.deepEqual(run?.env, ['PATH=/usr/bin:/bin', 'LANG=C', 'MODE=fast']);
  assert.deepEqual(argv(run), ['/bin/sh', '-c', 'make $MODE'], 'RUN text is left to the shell');
  assert.deepEqual(last.config.Env, ['PATH=/usr/bin:/bin', 'LANG=C']);
});

test('rule: --build-arg applies only to declared ARGs; unused ones are reported', () => {
  const { plan, last } = build('FROM debian:12\nARG USED=default\nRUN echo\nLABEL u=$USED n=$NOTDECLARED\n', {
    buildArgs: { USED: 'cli', NOTDECLARED: 'x', HTTP_PROXY: 'http://proxy:3128' },
  });
  assert.equal(last.config.Labels?.u, 'cli');
  assert.equal(last.config.Labels?.n, '');
  assert.deepEqual(plan.unusedBuildArgs, ['NOTDECLARED']);
  assert.ok(plan.warnings.some((w) => w.includes('NOTDECLARED')));
  assert.ok(runs(last)[0]?.env.includes('HTTP_PROXY=http://proxy:3128'), 'proxy args are predefined and reach RUN');
  assert.ok(!(last.config.Env ?? []).some((e) => e.startsWith('HTTP_PROXY')));
});

test('rule: ENV beats ARG (whichever comes first)', () => {
  const { last } = build('FROM debian:12\nENV LANG=en\nARG LANG=fr\nARG X=arg\nENV X=env\nLABEL lang=$LANG x=$X\nRUN true\n', {
    buildArgs: { LANG: 'de' },
  });
  assert.equal(last.config.Labels?.lang, 'en');
  assert.equal(last.config.Labels?.x, 'env');
  const env = runs(last)[0]?.env ?? [];
  assert.ok(env.includes('LANG=en') && !env.includes('LANG=de'));
});

test('rule: expansion applies to ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR only', () => {
  const { last } = build(
    [
      'FROM debian:12',
      'ENV P=8080 U=app D=/srv S=SIGINT',
      'EXPOSE $P',
      'USER $U',
      'VOLUME $D/data',
      'WORKDIR $D',
      'STOPSIGNAL $S',
      'LABEL dir=$D',
      'ENV E=$D/e',
      'COPY $U.txt $D/',
      'ADD ${U}.tgz /opt/',
      'RUN echo $D',
      'CMD echo $D',
      'ENTRYPOINT ["echo", "$D"]',
      '',
    ].join('\n'),
  );
  assert.deepEqual(Object.keys(last.config.ExposedPorts ?? {}), ['8080/tcp']);
  assert.equal(last.config.User, 'app');
  assert.deepEqual(Object.keys(last.config.Volumes ?? {}), ['/srv/data']);
  assert.equal(last.config.WorkingDir, '/srv');
  assert.equal(last.config.StopSignal, 'SIGINT');
  assert.equal(last.config.Labels?.dir, '/srv');
  assert.ok(last.config.Env?.includes('E=/srv/e'));
  const [copy, add] = copies(last);
  assert.deepEqual(copy?.sources, [{ kind: 'path', path: 'app.txt' }]);
  assert.equal(copy?.dest, '/srv');
  assert.equal(copy?.destIsDir, true);
  assert.deepEqual(add?.sources, [{ kind: 'path', path: 'app.tgz' }]);
  assert.deepEqual(argv(runs(last)[0]), ['/bin/sh', '-c', 'echo $D']);
  assert.deepEqual(last.config.Entrypoint, ['echo', '$D']);
  assert.deepEqual(last.config.Cmd, ['/bin/sh', '-c', 'echo $D'], 'CMD text is left to the shell');
});

test('rule: FROM scratch is an empty rootfs and config; FROM <stage> inherits the config', () => {
  const { stages } = build('FROM debian:12 AS base\nENV A=1\nFROM base AS child\nLABEL c=1\nFROM scratch\nCOPY --from=child /x /x\n');
  const [base, child, final] = stages;
  assert.equal(base?.config.Cmd?.[0], 'bash');
  assert.deepEqual(child?.config.Env, ['PATH=/usr/bin:/bin', 'LANG=C', 'A=1']);
  assert.deepEqual(child?.config.Labels, { vendor: 'debian', keep: 'yes', c: '1' });
  assert.deepEqual(final?.config, {});
  assert.equal(final?.fromScratch, true);
  assert.equal(child?.fromScratch, false);
});

test('rule: only the stages the target needs are built, in dependency order', () => {
  const text = [
    'FROM debian:12 AS tools',
    'FROM python:3.12 AS unused',
    'FROM scratch AS app',
    'COPY --from=tools /bin/sh /bin/sh',
    'FROM app AS final',
    'COPY --from=unused /x /x',
    '',
  ].join('\n');
  const forApp = planBuild(parseDockerfile(text), { target: 'APP' });
  assert.deepEqual(forApp.order, [0, 2]);
  assert.deepEqual(forApp.imageRefs, ['debian:12']);
  const all = planBuild(parseDockerfile(text));
  assert.deepEqual(all.order, [1, 0, 2, 3], 'dependencies (ascending) before dependents');
  assert.deepEqual(all.imageRefs, ['python:3.12', 'debian:12'], 'in build order');
  assert.throws(() => planBuild(parseDockerfile(text), { target: 'nope' }), /target stage "nope" could not be found \(named stages: tools, unused, app, final\)/);
});

test('rule: COPY --from names a stage (case-insensitive), an index, or an image', () => {
  const { stages } = build('ARG SRC=Build\nFROM debian:12 AS build\nFROM scratch\nCOPY --from=$SRC /a /a\nCOPY --from=0 /b /b\nCOPY --from=python:3.12 /c /c\nCOPY d /d\n');
  const steps = copies(stages[stages.length - 1] as ResolvedStage);
  assert.deepEqual(steps.map((s) => s.from), [
    { kind: 'stage', index: 0 },
    { kind: 'stage', index: 0 },
    { kind: 'image', ref: 'python:3.12' },
    { kind: 'context' },
  ]);
  assert.throws(() => planBuild(parseDockerfile('FROM scratch\nCOPY --from=5 /a /a\n')), /Dockerfile:2 COPY: --from=5: there is no stage with index 5/);
  assert.throws(() => planBuild(parseDockerfile('FROM scratch AS me\nCOPY --from=me /a /a\n')), /cannot copy from itself/);
});

test('stage cycles are detected and reported', () => {
  const text = 'FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y\n';
  assert.throws(() => planBuild(parseDockerfile(text)), /circular dependency between stages: (a -> b -> a|b -> a -> b)/);
});

test('stage names are validated and unique', () => {
  assert.throws(() => planBuild(parseDockerfile('FROM scratch AS x\nFROM scratch AS X\n')), /Dockerfile:2 FROM: duplicate stage name "x"/);
  assert.throws(() => planBuild(parseDockerfile('FROM scratch AS 1x\n')), /invalid stage name/);
  assert.throws(() => planBuild(parseDockerfile('FROM scratch AS\n')), /FROM takes an image/);
  assert.throws(() => planBuild(parseDockerfile('ARG E\nFROM $E\n')), /Dockerfile:2 FROM: base name \(\$E\) should not be blank/);
});

test('rule: WORKDIR is relative to the previous one', () => {
  const { last } = build('FROM scratch\nWORKDIR a\nWORKDIR b/../c\nWORKDIR /abs\nWORKDIR d\nCOPY x y\n');
  assert.deepEqual(last.steps.filter((s) => s.kind === 'workdir').map((s) => (s.kind === 'workdir' ? s.path : '')), ['/a', '/a/c', '/abs', '/abs/d']);
  assert.equal(copies(last)[0]?.dest, '/abs/d/y');
  assert.equal(copies(last)[0]?.destIsDir, false);
});

test('rule: RUN shell form uses /bin/sh -c or SHELL; exec form is JSON; invalid JSON is shell form', () => {
  const { last } = build('FROM debian:12\nRUN a && b\nRUN ["ls", "-l"]\nRUN [oops]\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nRUN c | d\nUSER 1000\nWORKDIR /w\nRUN e\n');
  const r = runs(last);
  assert.deepEqual(argv(r[0]), ['/bin/sh', '-c', 'a && b']);
  assert.deepEqual(argv(r[1]), ['ls', '-l']);
  assert.deepEqual(argv(r[2]), ['/bin/sh', '-c', '[oops]']);
  assert.deepEqual(argv(r[3]), ['/bin/bash', '-eo', 'pipefail', '-c', 'c | d']);
  assert.equal(r[3]?.shellForm, true);
  assert.equal(r[1]?.shellForm, false);
  assert.equal(r[4]?.user, '1000');
  assert.equal(r[4]?.workdir, '/w');
  assert.deepEqual(last.config.Shell, ['/bin/bash', '-eo', 'pipefail', '-c']);
  assert.throws(() => build('FROM scratch\nSHELL /bin/bash -c\n'), /Dockerfile:2 SHELL: SHELL requires the arguments in JSON form/);
});

test('rule: RUN heredocs: a lone heredoc is the script, #! scripts run as files, others go to the shell', () => {
  const { last } = build('FROM debian:12\nRUN <<EOF\necho one\necho two\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat <<EOF > /f\n$HOME\nEOF\n');
  const r = runs(last);
  assert.deepEqual(argv(r[0]), ['/bin/sh', '-c', 'echo one\necho two\n']);
  assert.deepEqual(r[1]?.exec, { kind: 'script', content: '#!/usr/bin/env python3\nprint(1)\n' });
  assert.deepEqual(argv(r[2]), ['/bin/sh', '-c', 'cat <<EOF > /f\n$HOME\nEOF\n']);
});

test('rule: COPY heredocs become files; unquoted delimiters expand, quoted ones do not', () => {
  const { last } = build('FROM scratch\nENV WHO=world\nCOPY <<EOF /hello\nhi $WHO "q"\nEOF\nCOPY <<"EOF" /raw\nhi $WHO\nEOF\n');
  const [a, b] = copies(last);
  assert.deepEqual(a?.sources, [{ kind: 'heredoc', name: 'EOF', content: 'hi world "q"\n' }]);
  assert.deepEqual(b?.sources, [{ kind: 'heredoc', name: 'EOF', content: 'hi $WHO\n' }]);
});

test('rule: CMD and ENTRYPOINT: last wins; ENTRYPOINT resets an inherited CMD', () => {
  const inherited = build('FROM debian:12\nENTRYPOINT ["/app"]\n').last.config;
  assert.deepEqual(inherited.Entrypoint, ['/app']);
  assert.equal(inherited.Cmd, null, 'the base image CMD ["bash"] is dropped');
  const sameStage = build('FROM debian:12\nCMD ["--help"]\nENTRYPOINT ["/app"]\n').last.config;
  assert.deepEqual(sameStage.Cmd, ['--help']);
  const lastWins = build('FROM scratch\nCMD ["a"]\nCMD ["b"]\nENTRYPOINT ["x"]\nENTRYPOINT y z\n').last.config;
  assert.deepEqual(lastWins.Cmd, ['b']);
  assert.deepEqual(lastWins.Entrypoint, ['/bin/sh', '-c', 'y z']);
  // Child stage inherits ENTRYPOINT and CMD; CMD alone replaces only CMD.
  const child = build('FROM debian:12 AS a\nENTRYPOINT ["/e"]\nCMD ["c"]\nFROM a\nCMD ["d"]\n').last.config;
  assert.deepEqual([child.Entrypoint, child.Cmd], [['/e'], ['d']]);
});

test('rule: shell-form CMD/ENTRYPOINT in a scratch-based stage warns', () => {
  const { last } = build('FROM scratch AS s\nCMD python3 app.py\nFROM s\nENTRYPOINT run\n');
  assert.equal(last.warnings.length, 1);
  assert.match(last.warnings[0] as string, /Dockerfile:4 ENTRYPOINT: shell form in a stage based on scratch/);
  assert.equal(build('FROM scratch\nCMD ["python3"]\n').last.warnings.length, 0);
  assert.equal(build('FROM debian:12\nCMD python3\n').last.warnings.length, 0);
});

test('rule: USER, LABEL (merged over the base), EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK only touch the config', () => {
  const { last } = build(
    'FROM debian:12\nUSER 1000:1000\nLABEL keep=overridden "with space"="a b" single=\'$x\'\nEXPOSE 80 53/udp 9000-9002/TCP\nVOLUME ["/data", "/logs"]\nSTOPSIGNAL 9\nHEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD curl -f http://localhost/\n',
  );
  assert.equal(last.steps.length, 0);
  assert.equal(last.config.User, '1000:1000');
  assert.deepEqual(last.config.Labels, { vendor: 'debian', keep: 'overridden', 'with space': 'a b', single: '$x' });
  assert.deepEqual(Object.keys(last.config.ExposedPorts ?? {}), ['80/tcp', '53/udp', '9000/tcp', '9001/tcp', '9002/tcp']);
  assert.deepEqual(Object.keys(last.config.Volumes ?? {}), ['/data', '/logs']);
  assert.equal(last.config.StopSignal, '9');
  assert.deepEqual(last.config.Healthcheck, { Test: ['CMD-SHELL', 'curl -f http://localhost/'], Interval: 30e9, Timeout: 90e9, Retries: 3 });
  assert.deepEqual(build('FROM scratch\nHEALTHCHECK NONE\n').last.config.Healthcheck, { Test: ['NONE'] });
  assert.throws(() => build('FROM scratch\nEXPOSE 70000\n'), /Dockerfile:2 EXPOSE: invalid port range/);
  assert.throws(() => build('FROM scratch\nEXPOSE http\n'), /invalid port "http"/);
  assert.throws(() => build('FROM scratch\nHEALTHCHECK --interval=soon CMD x\n'), /invalid duration "soon"/);
});

test('rule: ENV K=V K2=V2 and legacy ENV K V forms; Env order is kept, redefinition replaces in place', () => {
  const { last } = build('FROM debian:12\nENV A=1 B="two words" C=${A}x\nENV LEGACY value with  spaces\nENV PATH=/opt/bin:$PATH\n');
  assert.deepEqual(last.config.Env, [
    'PATH=/opt/bin:/usr/bin:/bin',
    'LANG=C',
    'A=1',
    'B=two words',
    'C=x',
    'LEGACY=value with  spaces',
  ]);
  assert.throws(() => build('FROM scratch\nENV A=1 B\n'), /Dockerfile:2 ENV: can't find = in "B"/);
  assert.throws(() => build('FROM scratch\nENV ONLYKEY\n'), /ENV needs KEY=VALUE/);
});

test('ENV values are evaluated left to right across lines but not within one line', () => {
  const { last } = build('FROM scratch\nENV A=1\nENV A=2 B=$A\nENV C=$A\n');
  assert.deepEqual(last.config.Env, ['A=2', 'B=1', 'C=2']);
});

test('COPY flags are expanded and validated', () => {
  const { last } = build('FROM scratch\nARG OWNER=1000\nCOPY --chown=$OWNER:0 --chmod=755 --link a b c /dst\n');
  const c = copies(last)[0];
  assert.equal(c?.chown, '1000:0');
  assert.equal(c?.chmod, 0o755);
  assert.equal(c?.link, true);
  assert.equal(c?.sources.length, 3);
  assert.throws(() => build('FROM scratch\nCOPY --chmod=u+x a /b\n'), /--chmod=u\+x: use an octal mode/);
  assert.throws(() => build('FROM scratch\nCOPY onlyone\n'), /Dockerfile:2 COPY: COPY needs at least one source/);
});

test('the base image ONBUILD triggers are reported, not inherited', () => {
  const { last } = build('FROM onbuild:1\nONBUILD RUN make\n');
  assert.deepEqual(last.config.OnBuild, ['RUN make']);
  assert.match(last.warnings[0] as string, /ONBUILD triggers are not run/);
});

test('expansion errors name the file, line and instruction', () => {
  assert.throws(() => build('FROM scratch\n\nLABEL a=${oops\n'), /^DockerfileError: Dockerfile:3 LABEL: syntax error: missing '}'/);
});

test('Go durations', () => {
  assert.equal(parseGoDuration('1h2m3.5s'), 3723.5e9);
  assert.equal(parseGoDuration('250ms'), 250e6);
  assert.equal(parseGoDuration('10'), null);
  assert.equal(parseGoDuration(''), null);
});

test('RUN --mount values are parsed (and expanded) into typed mounts', () => {
  const { last } = build('FROM debian:12\nARG CACHE=/root/.cache\nRUN --mount=type=cache,target=$CACHE,sharing=locked --mount=type=bind,from=debian:12,source=/etc,target=/mnt,rw make\n');
  const [cache, bind] = runs(last)[0]?.mounts ?? [];
  assert.equal(cache?.type, 'cache');
  assert.equal(cache?.target, '/root/.cache');
  assert.equal(cache?.sharing, 'locked');
  assert.equal(cache?.readOnly, false);
  assert.deepEqual([bind?.type, bind?.from, bind?.source, bind?.readOnly], ['bind', 'debian:12', '/etc', false]);
  assert.equal(parseRunMount('type=secret,id=tok').readOnly, true);
  assert.equal(parseRunMount('type=tmpfs,dst=tmp,size=1024').target, '/tmp');
  assert.throws(() => build('FROM scratch\nRUN --mount=type=nfs,target=/x true\n'), /Dockerfile:2 RUN: --mount=type=nfs,target=\/x: unsupported mount type "nfs"/);
  assert.throws(() => parseRunMount('type=cache'), /target is required/);
  assert.throws(() => parseRunMount('target=/x,bogus=1'), /unknown mount option "bogus"/);
});
