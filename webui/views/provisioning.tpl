% for m in made:
<article class="secret" id="secret-{{m['number']}}">
<header><strong>Extension {{m['number']}}</strong>{{' · ' + m['name'] if m['name'] else ''}}</header>
<p>SIP password: <code class="sip-secret">{{m['secret']}}</code></p>
<div class="provision">
<pre class="provisioning">{{m['text']}}</pre>
% if m['qr']:
<figure class="qr" role="img" aria-label="The provisioning text as a QR code">{{!m["qr"]}}</figure>
% end
</div>
</article>
% end
<p class="warn">Write these down or set up the phones now: the web admin shows a SIP password only this once. (A new one can be generated later on the extensions page.)</p>
