import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerfileError, flagValue, flagValues, parseDockerfile } from './parser.js';

function parse(text: string) {
  return parseDockerfile(text, 'Dockerfile');
}

test('rule: parser directives at the top (syntax, escape), only there, once', () => {
  const df = parse('# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\n');
  assert.equal(df.directives.syntax, 'docker/dockerfile:1');
  assert.equal(df.directives.escape, '`');
  // After a blank line or a comment, `# escape=` is just a comment.
  assert.equal(parse('\n# escape=`\nFROM scratch\n').directives.escape, '\\');
  assert.equal(parse('# hello\n# escape=`\nFROM scratch\n').directives.escape, '\\');
  assert.equal(parse('FROM scratch\n# escape=`\n').directives.escape, '\\');
  // An unknown directive ends the directive block.
  assert.equal(parse('# foo=bar\n# escape=`\nFROM scratch\n').directives.escape, '\\');
  // Names are case-insensitive; spacing is free.
  assert.equal(parse('#  ESCAPE = `\nFROM scratch\n').directives.escape, '`');
  assert.throws(() => parse('# escape=`\n# escape=\\\nFROM scratch\n'), /Dockerfile:2: only one escape parser directive/);
  assert.throws(() => parse('# escape=x\nFROM scratch\n'), /Dockerfile:1: invalid escape token/);
});

test('rule: line continuations join lines, skipping comments and blank lines', () => {
  const df = parse('FROM scratch\nRUN echo a \\\n  # a comment\n\n  b \\\n  c\nCMD x\n');
  const run = df.instructions[1];
  assert.equal(run?.keyword, 'RUN');
  assert.equal(run?.args, 'echo a   b   c');
  assert.equal(run?.line, 2);
  assert.equal(run?.endLine, 6);
  assert.equal(df.instructions[2]?.line, 7);
  assert.equal(df.warnings.length, 1, 'the blank continuation line is reported');
});

test('rule: backtick escape continues lines and leaves backslashes alone', () => {
  const df = parse('# escape=`\nFROM scratch\nCOPY C:\\src `\n  C:\\dst\n');
  assert.equal(df.instructions[1]?.args, 'C:\\src   C:\\dst');
});

test('rule: keywords are case-insensitive', () => {
  const df = parse('from scratch\nRun echo hi\ncOpY a b\n');
  assert.deepEqual(df.instructions.map((i) => i.keyword), ['FROM', 'RUN', 'COPY']);
});

test('rule: # is a comment only at the start of a line', () => {
  const df = parse('  # indented comment\nFROM scratch\nRUN echo # not a comment\n');
  assert.equal(df.instructions.length, 2);
  assert.equal(df.instructions[1]?.args, 'echo # not a comment');
});

test('rule: heredocs on RUN and COPY, <<- strips tabs, quoted delimiter disables expansion', () => {
  const df = parse(
    'FROM scratch\nRUN <<EOF\necho $HOME\n  indented\nEOF\nCOPY <<-"END" /etc/motd\n\thello $USER\n\tEND\nUSER nobody\n',
  );
  const [, run, copy, user] = df.instructions;
  assert.equal(run?.heredocs[0]?.name, 'EOF');
  assert.equal(run?.heredocs[0]?.content, 'echo $HOME\n  indented\n');
  assert.equal(run?.heredocs[0]?.expand, true);
  assert.equal(run?.endLine, 5);
  assert.equal(copy?.args, '<<-"END" /etc/motd');
  assert.deepEqual(copy?.heredocs[0], { name: 'END', content: 'hello $USER\n', expand: false, stripTabs: true });
  assert.equal(user?.line, 9);
});

test('rule: several heredocs on one line are read in order', () => {
  const df = parse('FROM scratch\nCOPY <<A <<B /dst/\na\nA\nb\nB\n');
  assert.deepEqual(df.instructions[1]?.heredocs.map((h) => [h.name, h.content]), [['A', 'a\n'], ['B', 'b\n']]);
});

test('rule: an unterminated heredoc is an error naming the line', () => {
  assert.throws(() => parse('FROM scratch\nRUN <<EOF\necho\n'), /Dockerfile:2 RUN: unterminated heredoc/);
});

test('rule: a quoted << is not a heredoc; heredocs only on RUN/COPY/ADD', () => {
  const df = parse('FROM scratch\nRUN echo "<<EOF"\nLABEL a=<<EOF\n');
  assert.equal(df.instructions[1]?.heredocs.length, 0);
  assert.equal(df.instructions[2]?.heredocs.length, 0);
});

test('rule: JSON exec form vs shell form; invalid JSON falls back to shell form', () => {
  const df = parse('FROM scratch\nCMD ["/bin/app", "-x"]\nCMD [bad json]\nENTRYPOINT ["a", 1]\nRUN []\n');
  assert.deepEqual(df.instructions[1]?.json, ['/bin/app', '-x']);
  assert.equal(df.instructions[2]?.json, null);
  assert.equal(df.instructions[2]?.args, '[bad json]');
  assert.equal(df.instructions[3]?.json, null, 'non-string elements are not the exec form');
  assert.deepEqual(df.instructions[4]?.json, []);
});

test('rule: instruction flags are split off and validated', () => {
  const df = parse(
    'FROM --platform=linux/amd64 busybox AS b\nCOPY --from=b --chown=1:2 --chmod=0755 --link /a /b\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t make\n',
  );
  const [from, copy, run] = df.instructions;
  assert.equal(flagValue(from!, 'platform'), 'linux/amd64');
  assert.equal(from?.args, 'busybox AS b');
  assert.equal(flagValue(copy!, 'from'), 'b');
  assert.equal(flagValue(copy!, 'chown'), '1:2');
  assert.equal(flagValue(copy!, 'chmod'), '0755');
  assert.equal(flagValue(copy!, 'link'), 'true');
  assert.equal(copy?.args, '/a /b');
  assert.deepEqual(flagValues(run!, 'mount'), ['type=cache,target=/c', 'type=tmpfs,target=/t']);
  assert.equal(run?.args, 'make');
  assert.throws(() => parse('FROM scratch\nCOPY --frm=x a b\n'), /Dockerfile:2 COPY: unknown flag: --frm/);
  assert.throws(() => parse('FROM scratch\nCOPY --from=a --from=b a b\n'), /duplicate flag/);
  // Words starting with -- after the first argument are arguments, not flags.
  assert.equal(parse('FROM scratch\nRUN ls --all\n').instructions[1]?.flags.length, 0);
});

test('unknown instructions and missing arguments are errors naming file and line', () => {
  assert.throws(() => parse('FROM scratch\n\nFROB x\n'), (e: unknown) => {
    assert.ok(e instanceof DockerfileError);
    assert.equal(e.line, 3);
    assert.match(e.message, /^Dockerfile:3 FROB: unknown instruction/);
    return true;
  });
  assert.throws(() => parse('FROM scratch\nWORKDIR\n'), /Dockerfile:2 WORKDIR: WORKDIR requires at least one argument/);
});

test('CRLF line endings and a BOM are accepted', () => {
  const df = parse('\uFEFFFROM scratch\r\nCMD ["a"]\r\n');
  assert.deepEqual(df.instructions[1]?.json, ['a']);
});

test('an oversized Dockerfile is refused', () => {
  assert.throws(() => parseDockerfile('FROM scratch\n'.repeat(10), 'D', { maxLength: 20 }), /larger than 20/);
});
