-- Managed by pgxc-deploy: registers the cluster's nodes with coordinator coord2.
-- A fresh coordinator knows only itself, as localhost:5432. Standbys are never registered.
ALTER NODE coord2 WITH (HOST = 'db2.example.com', PORT = 5432, FORWARD = 5434);
CREATE NODE coord1 WITH (TYPE = 'coordinator', HOST = '10.0.0.1', PORT = 5432, FORWARD = 5434);
CREATE NODE dn1 WITH (TYPE = 'datanode', HOST = 'db2.example.com', PORT = 15432, FORWARD = 15434, PRIMARY);
CREATE NODE dn2 WITH (TYPE = 'datanode', HOST = 'fd00::3', PORT = 15433, FORWARD = 15435);
SELECT pgxc_pool_reload();
