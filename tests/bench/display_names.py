"""Display names (issue 11.7): the cost of summarize() on the header-sync path (unchanged: it
stores the decoded From as before) and of parsing a display name where one is shown, against
email.headerregistry (policy.default).  Run: PYTHONPATH=. python tests/bench/display_names.py"""

import timeit
import random
import email
from email import policy
from tuimail.mail.headers import summarize
from tuimail.mail.addresses import short_from
random.seed(1)
froms = ['"Hannah O\'Brien" <hannah@example.org>', 'Mary Smith <mary@x.test>',
         '=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jm@x.test>',
         'Pete(A wonderful \\) chap) <pete(his account)@silly.test(his host)>', 'bare@example.com',
         '"Smith, John" <j@x.test>']
blocks = []
for i in range(20000):
    f = froms[i % len(froms)]
    blocks.append((f"From: {f}\r\nTo: me@example.org\r\nSubject: message {i} =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
                   f"Date: Mon, 01 Jan 2024 10:00:{i%60:02d} +0000\r\nMessage-ID: <m{i}@x>\r\n"
                   f"References: <a{i}@x> <b{i}@x>\r\nContent-Type: text/plain\r\n\r\n").encode())
values = [summarize(b)["from_"] for b in blocks]
t = min(timeit.repeat(lambda: [summarize(b) for b in blocks], number=1, repeat=5))
print(f"summarize 20k headers: {t*1000:.0f} ms ({t/20000*1e6:.1f} us/header)")
t = min(timeit.repeat(lambda: [short_from(v) for v in values], number=1, repeat=5))
print(f"short_from (display name) 20k From values: {t*1000:.0f} ms ({t/20000*1e6:.2f} us each)")


def hr(v):
    return email.message_from_string(f"From: {v}\n\n", policy=policy.default)["from"].addresses


t = min(timeit.repeat(lambda: [hr(v) for v in values[:2000]], number=1, repeat=3)) * 10
print(f"policy.default headerregistry 20k From values: {t*1000:.0f} ms ({t/20000*1e6:.1f} us each)")
