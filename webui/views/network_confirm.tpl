% rebase('layout', title=title)
<h1>{{title}}</h1>
% if done:
<p id="confirmed">The new address is kept and saved for the next start.</p>
<p><a href="/network">Back to the network page</a> (log in again at this address).</p>
% else:
% if error:
<p class="field-error" id="confirm-error">{{error}}</p>
% end
<p>You reached the box at its new address. Keep this address?</p>
<form method="post" action="/network/confirm/{{change_id}}">
<input type="hidden" name="csrf" value="{{csrf}}">
<button type="submit" id="keep">Keep the new address</button>
</form>
% end
