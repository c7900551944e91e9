% rebase('layout', title='Restarting')
<h1>Restarting</h1>
<p id="restarting">The PBX service is restarting: calls in progress were hung up, phones register again
within a minute. <a href="/">Back to the dashboard</a> in a few seconds.</p>
