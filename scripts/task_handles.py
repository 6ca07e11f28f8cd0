#!/usr/bin/env python3
"""Moves call sites to #[flotilla::task] handles: `submit(fib, x)` -> `submit(FibTask, x)`,
`fib::call(x)` -> `fib(x)`, in the files given.

For a branch made before the change: run it on the files the branch touched
(`python3 scripts/task_handles.py write $(git diff --name-only main...HEAD)`; `check` instead
of `write` lists what would change), then let the compiler point at what it could not see: a
task used in a file other than the one defining it (import `FooTask` instead of `foo`), or a
function passed where a handle is wanted (`error[E0277]: ... is not a flotilla task`, which
names the handle). Only tasks declared in the same file are rewritten; comments, strings and
non-Rust doc blocks are left as they are.

Run it once, on code written before the change only: after it, a task's name used as a value
is the function (`.map(fib)`), which this script would wrongly turn into the handle.
"""
import re, sys, os, json
ATTR = re.compile(r'#\[(?:flotilla|flotilla_process)::task(?:\(([^)\]]*)\))?\]')
FN = re.compile(r'\bfn\s+(?:r#)?([A-Za-z_][A-Za-z0-9_]*)')
def handle_name(n):
    return ''.join(p[0].upper()+p[1:] for p in n.split('_') if p) + 'Task'

ATTR_LINE = re.compile(r'^\s*(?:///|//!)?\s*(?:#\s+)?#\[(?:flotilla|flotilla_process)::task(?:\(([^)\]]*)\))?\]', re.M)
def tasks_in(text):
    names = {}
    for m in ATTR_LINE.finditer(text):
        args = m.group(1) or ''
        if 'crate = path' in args or 'handle = Name' in args: continue
        f = FN.search(text, m.end())
        if not f or text.count('\n', m.end(), f.start()) > 4: continue
        h = re.search(r'handle\s*=\s*(\w+)', args)
        names[f.group(1)] = h.group(1) if h else handle_name(f.group(1))
    return names

def in_string(line, pos):
    n = 0; i = 0
    while i < pos:
        c = line[i]
        if c == '\\': i += 2; continue
        if c == '"': n += 1
        i += 1
    return n % 2 == 1

def code_comment(line, doc):
    start = 0
    if doc:
        start = line.index('//') + 3
    i = start
    while True:
        j = line.find('//', i)
        if j < 0: return None
        if not in_string(line, j): return j
        i = j + 2

def rewrite(text, names):
    out = []
    fence = False
    rustfence = [False]
    md = MD
    for line in text.split('\n'):
        stripped = line.lstrip()
        doc = stripped.startswith('///') or stripped.startswith('//!')
        if doc or md:
            body = stripped[3:].lstrip() if doc else stripped
            if body.startswith('```'):
                if fence:
                    fence = False
                else:
                    lang = body[3:].strip()
                    fence = lang == '' or any(w in lang for w in ('rust','no_run','ignore','compile_fail','should_panic','edition'))
                    rustfence[0] = fence
                    fence = True
                out.append(line); continue
            if not rustfence[0]:
                out.append(line); continue
            if not fence:
                out.append(line); continue
        elif stripped.startswith('//'):
            out.append(line); continue
        # a trailing `// comment` on a code line stays as it is
        tail = ''
        cpos = code_comment(line, doc)
        if cpos is not None:
            line, tail = line[:cpos], line[cpos:]
        for name, handle in names.items():
            line = re.sub(r'\b%s::call\(' % re.escape(name), name + '(', line)
            res = []; last = 0
            for m in re.finditer(r'\b%s\b' % re.escape(name), line):
                s, e = m.span()
                before = line[:s]; after = line[e:]
                if in_string(line, s): continue
                if re.search(r'(\bfn\s+|\.|r#|\blet\s+(mut\s+)?|\bmut\s+|\||\bmod\s+|\bstruct\s+)$', before): continue
                if re.match(r'\s*(\(|!|:(?!:)|=(?!=|>))', after): continue
                res.append(line[last:s]); res.append(handle); last = e
            res.append(line[last:]); line = ''.join(res)
        out.append(line + tail)
    return '\n'.join(out)

if __name__ == '__main__':
    mode = sys.argv[1]
    files = sys.argv[2:]
    for f in files:
        global MD
        MD = f.endswith('.md')
        t = open(f).read()
        names = tasks_in(t)
        extra = os.environ.get('EXTRA')
        if extra:
            names.update(json.loads(extra))
        if not names: continue
        n = rewrite(t, names)
        if n != t:
            if mode == 'write': open(f, 'w').write(n)
            print(f, sorted(names))
