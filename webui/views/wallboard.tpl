<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false, "allowScriptTags": false}'>
<link rel="icon" href="data:,">
<title>Wallboard · LineBox</title>
<link rel="stylesheet" href="/static/wallboard.css">
<script src="/static/vendor/htmx-2.0.11.min.js" defer></script>
<script src="/static/vendor/htmx-ext-sse-2.2.4.min.js" defer></script>
<script src="/static/wallboard.js" defer></script>
</head>
<body class="wallboard">
<header class="wb-bar">
<span class="wb-brand">LineBox wallboard</span>
<span class="wb-legend">service level: <span class="sl-good">≥ {{'%g' % good}} %</span> <span class="sl-fair">≥ {{'%g' % fair}} %</span> <span class="sl-bad">below</span></span>
<span class="wb-tools"><button type="button" id="fullscreen" hidden>Full screen</button> <a href="/">Admin</a></span>
</header>
<main hx-ext="sse" sse-connect="/events/wallboard">
<div id="board" sse-swap="wallboard">
% include('wallboard_live')
</div>
</main>
</body>
</html>
