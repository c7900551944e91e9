% rebase('layout', title='New address')
% include('steps')
<h1>The box is moving to {{address}}</h1>
<p>Open <a id="confirm-link" href="{{url}}">{{url}}</a> within {{'%g' % window}} seconds and keep the
new address there; then log in again at the new address and go on with the extensions. If you
cannot reach it, the box goes back to its old address by itself and this page works again.</p>
