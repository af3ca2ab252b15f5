"""The cloud tier: the segmented AWS network as a Pulumi program (`network`), its offline plan under
Pulumi's mocks (`plan`, `evaluate`) and the CrossGuard policy pack that judges it (`rules`)."""
