% rebase('layout', title='SIP password')
<h1>Set up the phone</h1>
% include('provisioning')
<p><a href="/extensions">Back to the extensions</a></p>
