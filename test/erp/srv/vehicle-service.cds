using { erp } from '../db/schema';

// Served as OData V4 under /odata/v4/vehicle and, through the OData V2
// adapter, as OData V2 under /odata/v2/vehicle.
@path: 'vehicle'
service VehicleService {
  entity Vehicles as projection on erp.Vehicles;
}

// modifiedAt is the ETag, so writes must send If-Match with the value read.
annotate VehicleService.Vehicles with {
  modifiedAt @odata.etag;
}
