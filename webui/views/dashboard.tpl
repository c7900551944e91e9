% rebase('layout', title='Dashboard')
<h1>Dashboard</h1>
<div hx-ext="sse" sse-connect="/events/dashboard" class="live">
<section>
<h2>Active calls</h2>
<div class="scroll"><table id="calls">
<thead><tr><th>From</th><th>To</th><th>State</th><th>Time</th><th class="opt">Codecs</th><th></th></tr></thead>
<tbody sse-swap="live_calls">
% include('live_calls')
</tbody></table></div>
</section>
<div class="grid">
<section>
<h2>System</h2>
<div sse-swap="live_health" id="health">
% include('live_health')
</div>
</section>
<section>
<h2>Security events</h2>
<div class="scroll"><table id="security">
<thead><tr><th>When</th><th>What</th><th>From</th><th class="opt">User</th></tr></thead>
<tbody sse-swap="live_security">
% include('live_security')
</tbody></table></div>
</section>
</div>
<section>
<h2>Lines</h2>
<div class="scroll"><table id="ports">
<thead><tr><th>Port</th><th>Kind</th><th>Use</th><th>State</th></tr></thead>
<tbody sse-swap="live_ports">
% include('live_ports')
</tbody></table></div>
</section>
<section>
<h2>Today's calls</h2>
<div sse-swap="live_volume" id="volume">
% include('live_volume')
</div>
</section>
<section>
<h2>Registrations</h2>
<div class="scroll"><table id="registrations">
<thead><tr><th>Extension</th><th>From</th><th class="opt">Transport</th><th class="opt">Expires in</th><th class="opt">Phone</th><th>Reachable</th></tr></thead>
<tbody sse-swap="live_registrations">
% include('live_registrations')
</tbody></table></div>
</section>
</div>
