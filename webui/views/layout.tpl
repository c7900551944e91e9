<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false, "allowScriptTags": false}'>
<link rel="icon" href="data:,">
<title>{{title}} · LineBox</title>
<link rel="stylesheet" href="/static/vendor/pico-2.1.1.classless.min.css">
<link rel="stylesheet" href="/static/app.css">
<script src="/static/vendor/htmx-2.0.11.min.js" defer></script>
<script src="/static/vendor/htmx-ext-sse-2.2.4.min.js" defer></script>
</head>
<body>
<header>
<nav>
<ul><li><a href="/" class="brand"><strong>LineBox</strong></a></li></ul>
% if user:
<ul>
<li><a href="/"{{!' aria-current="page"' if path == '/' else ''}}>Dashboard</a></li>
<li><a href="/extensions"{{!' aria-current="page"' if path.startswith('/extensions') else ''}}>Extensions</a></li>
% for label, href in get('nav', []):
<li><a href="{{href}}"{{!' aria-current="page"' if path.startswith(href) else ''}}>{{label}}</a></li>
% end
<li><a href="/settings"{{!' aria-current="page"' if path == '/settings' else ''}}>Settings</a></li>
<li><a href="/audit"{{!' aria-current="page"' if path == '/audit' else ''}}>Audit log</a></li>
<li><form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="link">Log out</button></form></li>
</ul>
% end
</nav>
</header>
<main>
% if notice:
<p role="status" class="notice">{{notice}}</p>
% end
{{!base}}
</main>
</body>
</html>
